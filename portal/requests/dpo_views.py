"""The DPO console: TOTP, queue, review, decisions, overview."""
from flask import Blueprint

bp = Blueprint("dpo", __name__)
