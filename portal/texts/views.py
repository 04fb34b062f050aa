"""Texts: list, create, edit, delete, share with coach."""
from flask import Blueprint

bp = Blueprint("texts", __name__, url_prefix="/texter")
