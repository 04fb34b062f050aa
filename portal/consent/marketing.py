"""Marketing switches, one-click unsubscribe and the newsletter audience."""
from flask import Blueprint

bp = Blueprint("marketing", __name__)
