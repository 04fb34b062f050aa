"""Invoice bases per organisation and month (CSV and PDF), for the DPO."""
from flask import Blueprint

bp = Blueprint("billing", __name__)
