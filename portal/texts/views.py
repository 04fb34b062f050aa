"""Texts: list, create, edit, delete, share with coach. Thin: load, validate, call, commit."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.auth.models import Role
from portal.db import db
from portal.forms import ButtonForm
from portal.security import role_required
from portal.texts import services
from portal.texts.forms import KIND_LABELS, TextForm
from portal.texts.models import BODY_MAX, TITLE_MAX, Text, TextKind

bp = Blueprint("texts", __name__, url_prefix="/texter")
PER_PAGE = 50  # texts per page of the list


@bp.context_processor
def _texts_context() -> dict:
    return {"kind_labels": KIND_LABELS, "title_max": format_number(TITLE_MAX),
            "body_max": format_number(BODY_MAX)}


def _own_text_or_404(text_id: int) -> Text:
    text = services.get_own_text(current_user.id, text_id)
    if text is None:
        abort(404)
    return text


def _form_page(form: TextForm, text: Text | None = None):
    return render_template("texts/form.html", form=form, text=text), 400 if form.errors else 200


@bp.route("/")
@login_required
@role_required(Role.USER)
def index():
    wanted = request.args.get("sida", 1, type=int) or 1
    texts, total, page = services.text_page(current_user.id, min(wanted, 100_000), PER_PAGE)
    return render_template("texts/index.html", texts=texts, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)))


@bp.route("/ny", methods=["GET", "POST"])
@login_required
@role_required(Role.USER)
def create():
    form = TextForm()
    if form.validate_on_submit():
        text = services.create_text(current_user, form.title.data, TextKind(form.kind.data),
                                    form.body.data, form.share.data)
        db.session.commit()
        flash(_("Your text is saved."), "success")
        return redirect(url_for("texts.show", text_id=text.id))
    return _form_page(form)


@bp.route("/<int:text_id>")
@login_required
@role_required(Role.USER)
def show(text_id: int):
    text = _own_text_or_404(text_id)
    return render_template("texts/show.html", text=text, button=ButtonForm())


@bp.route("/<int:text_id>/andra", methods=["GET", "POST"])
@login_required
@role_required(Role.USER)
def edit(text_id: int):
    text = _own_text_or_404(text_id)
    form = TextForm(data={"title": text.title, "kind": text.kind.value, "body": text.body,
                          "share": text.shared_with_coach})
    if form.validate_on_submit():
        services.update_text(current_user, text, form.title.data, TextKind(form.kind.data),
                             form.body.data, form.share.data)
        db.session.commit()
        flash(_("Your changes are saved."), "success")
        return redirect(url_for("texts.show", text_id=text.id))
    return _form_page(form, text)


@bp.route("/<int:text_id>/radera", methods=["GET", "POST"])
@login_required
@role_required(Role.USER)
def delete(text_id: int):
    text = _own_text_or_404(text_id)
    form = ButtonForm()
    if form.validate_on_submit():
        services.delete_text(current_user, text)
        db.session.commit()
        flash(_("The text is deleted."), "success")
        return redirect(url_for("texts.index"))
    return render_template("texts/delete.html", text=text, button=form)


@bp.route("/<int:text_id>/dela", methods=["POST"])
@login_required
@role_required(Role.USER)
def toggle_share(text_id: int):
    text = _own_text_or_404(text_id)
    if ButtonForm().validate_on_submit():
        shared = not text.shared_with_coach
        services.set_shared(current_user, text, shared)
        db.session.commit()
        if shared:
            flash(_("The text is now shared. Your job coach can read it for as long as the "
                    "link between you stands."), "success")
        else:
            flash(_("The text is no longer shared. Your job coach can no longer read it."),
                  "success")
    return redirect(url_for("texts.show", text_id=text.id))
