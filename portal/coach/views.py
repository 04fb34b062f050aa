"""Coach sharing: the user's side (add, resend, cancel, revoke) and the coach area."""
from flask import Blueprint

bp = Blueprint("coach", __name__)
