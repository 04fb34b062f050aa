"""Cookie banner, cookie settings and the consented page statistics."""
from flask import Blueprint

bp = Blueprint("cookies", __name__)
