"""Team accounts: sign-in, sign-out, the one-time setup page and `flask create-user`.

Every page needs a signed-in user except the ones listed in `PUBLIC_ENDPOINTS`. The
first account is made on `/setup/<token>`, a page that works only while no account
exists and only with the token that the app prints at startup.
"""

import getpass
import hmac
import logging
import os
import re
import sys
from urllib.parse import urlsplit

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.cli import with_appcontext
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from models import User, db

log = logging.getLogger("smstrack.auth")

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to continue."
login_manager.login_message_category = "warning"

limiter = Limiter(get_remote_address)

PUBLIC_ENDPOINTS = frozenset(
    {"auth.login", "auth.setup", "static", "livez", "healthz", "webhooks.delivery_receipt"}
)
MIN_PASSWORD_LENGTH = 12
# A few of the passwords that lists of leaked passwords put first; the length rule
# stops most others.
COMMON_PASSWORDS = frozenset(
    {"password1234", "123456789012", "qwertyuiop12", "passwordpassword", "letmeinletmein"}
)
PASSWORD_HASH_METHOD = "scrypt"
# Checked when the email has no account, so that a wrong email takes as long as a
# wrong password and the timing does not reveal which emails have accounts.
UNKNOWN_ACCOUNT_HASH = generate_password_hash("no account has this password", "scrypt")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def password_problem(password: str, email: str) -> str | None:
    """Return why a password is too weak, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
    if len(set(password)) < 5:
        return "The password repeats too few characters: use at least 5 different ones."
    if password.lower() in COMMON_PASSWORDS:
        return "The password is one of the most common ones: choose another."
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in password.lower():
        return "The password contains the email address: choose another."
    return None


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str) -> User:
    """Store a new account; raise ValueError with a message for people when invalid."""
    email = normalise_email(email)
    if not EMAIL_PATTERN.match(email) or len(email) > 254:
        raise ValueError(f"'{email}' is not a valid email address.")
    problem = password_problem(password, email)
    if problem:
        raise ValueError(problem)
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ValueError(f"An account for {email} already exists.")

    user = User(email=email, password_hash=generate_password_hash(password, PASSWORD_HASH_METHOD))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ValueError(f"An account for {email} already exists.") from None
    log.info("Created account %s", user.id)
    return user


def account_exists() -> bool:
    return db.session.scalar(select(func.count()).select_from(User)) > 0


def setup_token(app) -> str:
    """Return the setup page's token, derived from SECRET_KEY so every worker agrees."""
    digest = hmac.new(app.config["SECRET_KEY"].encode(), b"smstrack first-account setup", "sha256")
    return digest.hexdigest()[:32]


def setup_url(app) -> str:
    """Return the setup link: on PUBLIC_URL, on the local port when known, else a path."""
    path = f"/setup/{setup_token(app)}"
    if app.config.get("PUBLIC_URL"):
        return app.config["PUBLIC_URL"].rstrip("/") + path
    bind = os.environ.get("GUNICORN_BIND", "")
    port = os.environ.get("FLASK_RUN_PORT") or bind.rpartition(":")[2]
    return f"http://127.0.0.1:{port}{path}" if port.isdigit() else f"{path} on this server"


def announce_setup(app) -> None:
    """Print the one-time setup link while no account exists."""
    with app.app_context():
        if account_exists():
            return
    print(
        "\nNo account exists yet. Create the first one here (the link works once):\n"
        f"    {setup_url(app)}\n",
        file=sys.stderr,
        flush=True,
    )


def is_safe_next(target: str | None) -> bool:
    """Tell whether a `next` target stays on this site (a path, not a URL elsewhere)."""
    if not target or any(ord(character) < 0x20 or ord(character) == 0x7F for character in target):
        return False
    parts = urlsplit(target)
    return (
        not parts.scheme
        and not parts.netloc
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    )


def login_account_key() -> str:
    return "account:" + normalise_email(request.form.get("email", ""))


def login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password.")])


class SetupForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="The email address is too long."),
        ],
    )
    password = PasswordField("Password", validators=[DataRequired("Choose a password.")])
    confirm = PasswordField(
        "Repeat the password",
        validators=[EqualTo("password", "The two passwords differ.")],
    )

    def validate_password(self, field):
        problem = password_problem(field.data, self.email.data or "")
        if problem:
            raise ValidationError(problem)


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
@limiter.limit(login_rate_limit, methods=["POST"], key_func=login_account_key)
def login():
    """Sign in with email and password, then go to the checked `next` page."""
    form = LoginForm()
    if form.validate_on_submit():
        email = normalise_email(form.email.data)
        user = db.session.scalar(select(User).where(User.email == email))
        password_hash = user.password_hash if user is not None else UNKNOWN_ACCOUNT_HASH
        if check_password_hash(password_hash, form.password.data) and user is not None:
            login_user(user)
            log.info("Account %s signed in from %s", user.id, request.remote_addr)
            target = request.args.get("next")
            return redirect(target if is_safe_next(target) else url_for("messages.index"))

        account = user.id if user is not None else "unknown"
        log.warning("Failed sign-in from %s (account %s)", request.remote_addr, account)
        flash("The email or password is wrong.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign out (a POST with a CSRF token, so no other site can sign you out)."""
    logout_user()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
@limiter.limit(login_rate_limit, methods=["POST"])
def setup(token):
    """Create the first account; gone once any account exists or with a wrong token."""
    expected = setup_token(current_app._get_current_object())
    if not hmac.compare_digest(token.encode(), expected.encode()) or account_exists():
        log.warning("Setup page requested with a wrong token or after setup, from %s",
                    request.remote_addr)
        abort(404)

    form = SetupForm()
    if form.validate_on_submit():
        # Two setups at once must not both pass the check above: take the accounts
        # table's write lock, then check again.
        lock_accounts()
        if account_exists():
            db.session.rollback()
            abort(404)
        try:
            user = create_user(form.email.data, form.password.data)
        except ValueError as error:
            form.email.errors.append(str(error))
        else:
            login_user(user)
            flash("Your account is ready.", "success")
            return redirect(url_for("messages.index"))
    return render_template("auth/setup.html", form=form)


def lock_accounts() -> None:
    """Take a write lock on the accounts table until the transaction ends."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("LOCK TABLE user_account IN SHARE ROW EXCLUSIVE MODE"))
    else:
        # A write statement takes SQLite's database write lock, even when it matches
        # no row.
        db.session.execute(text("DELETE FROM user_account WHERE 1 = 0"))


def require_login():
    """Send anonymous visitors of any non-public page to the sign-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    return None


def read_password(prompt: str) -> str:
    """Read a password from the terminal without echo, or a line from piped stdin."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    try:
        line = sys.stdin.readline()
        line.encode("utf-8")
    except UnicodeError:
        raise click.ClickException("The password is not valid UTF-8 text.") from None
    return line.rstrip("\n").rstrip("\r")


@click.command("create-user")
@click.argument("email")
@with_appcontext
def create_user_command(email):
    """Create an account for EMAIL, prompting for the password twice."""
    password = read_password("Password: ")
    confirmation = read_password("Repeat the password: ")
    if password != confirmation:
        raise click.ClickException("The two passwords differ; nothing was created.")
    try:
        user = create_user(email, password)
    except ValueError as error:
        raise click.ClickException(f"{error} Nothing was created.") from None
    click.echo(f"Created the account {user.email}.")
