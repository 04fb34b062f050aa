"""Rights requests: the user's side (file, track, withdraw)."""
from flask import Blueprint

bp = Blueprint("requests", __name__)
