"""The receipt webhook under gunicorn with 4 workers: a storm of receipts, then a crash.

Why these tests exist: the other receipt tests send one receipt at a time through the
Flask test client, in one process, so they cannot show races between workers.
test_receipt_storm checks that concurrent workers store each receipt once and agree on
every part's and message's status whatever the arrival order. test_receipts_survive_kill
kills the server with SIGKILL to check that a 2xx reply means the receipt was committed.
"""

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import flask_migrate
import pytest
import requests
from sqlalchemy import func, select

import storm_client
from app import create_app
from conftest import TEST_SETTINGS, store_submitted_message
from models import Receipt, Sms, SmsPart, db
from pg_server import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4
CLIENTS = 4
# 350 messages of 1 to 3 parts with 2 to 4 receipts per part, plus 20% duplicates,
# make about 2,500 requests.
STORM_MESSAGES = 350
KILL_MESSAGES = 50
DUPLICATE_SHARE = 0.2
# Share of receipts that copy the message-timestamp of an earlier receipt of the same
# part, so that the accepted/buffered tie rule is exercised.
SAME_TIME_SHARE = 0.25
# With all seven statuses most parts end on a failing final, which decides the message
# too. Some parts therefore draw from fewer statuses, so that the storm also covers parts
# decided by the accepted/buffered time order, delivered messages, and messages that
# take the status of their least advanced part.
PART_STATUS_CHOICES = (
    (0.6, storm_client.RECEIPT_STATUSES),
    (0.2, ("accepted", "buffered")),
    (0.2, ("accepted", "buffered", "unknown", "delivered")),
)
SERVER_START_TIMEOUT = 30  # seconds
SERVER_STOP_TIMEOUT = 10  # seconds
SEND_BEFORE_KILL = 1.5  # seconds the clients send after the first stored receipt
CLIENT_TIME_LIMIT = 60  # seconds. The kill stops every client long before this.
FAILURES_SHOWN = 5
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The oracle below restates the status rules independently of models.py.
FINALS_BY_SEVERITY = ("delivered", "expired", "rejected", "failed")
FAILING_FINALS_MOST_SEVERE_FIRST = ("failed", "rejected", "expired")
# Least advanced first, with `accepted` counted as less advanced than `buffered`.
PROGRESS_ORDER = ("submitted", "accepted", "buffered", "unknown", "delivered")


def expected_part_status(receipts: list[tuple[str, str]]) -> str:
    """Return the part status that (status, message-timestamp) receipts must produce.

    The most severe final wins. Without a final, `unknown` wins. Without either, the
    accepted or buffered receipt with the latest timestamp wins, buffered on equal
    times. A part without receipts stays `submitted`.
    """
    statuses = {status for status, _ in receipts}
    finals = [status for status in FINALS_BY_SEVERITY if status in statuses]
    if finals:
        return finals[-1]
    if "unknown" in statuses:
        return "unknown"

    # Timestamps are "YYYY-MM-DD HH:MM:SS" text, whose sort order is time order.
    interim = [
        (timestamp, status == "buffered", status)
        for status, timestamp in receipts
        if status in ("accepted", "buffered")
    ]
    if interim:
        return max(interim)[2]
    return "submitted"


def expected_message_status(part_statuses: list[str]) -> str:
    """Return the message status that its parts' statuses must produce."""
    if all(status == "delivered" for status in part_statuses):
        return "delivered"
    for status in FAILING_FINALS_MOST_SEVERE_FIRST:
        if status in part_statuses:
            return status
    return min(part_statuses, key=PROGRESS_ORDER.index)


def identity_key(fields: dict) -> tuple:
    """Return the fields that identify a receipt. The webhook stores each identity once."""
    return tuple(
        fields[name] for name in ("messageId", "status", "err-code", "scts", "message-timestamp")
    )


# Database helpers


@contextmanager
def app_context(url: str):
    """Enter an app context on the database at `url`, and dispose its engine on exit."""
    app = create_app({**TEST_SETTINGS, "DATABASE_URL": url})
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()
            db.engine.dispose()


def create_seeded_database(new_database, message_count: int, rng: random.Random):
    """Migrate a new database and store submitted messages of 1 to 3 parts each.

    Returns the URL and a mapping of each message's id to its parts' message-ids.
    """
    url = new_database()
    with app_context(url):
        flask_migrate.upgrade()
        messages = {}
        for number in range(message_count):
            message_ids = [f"{number:08X}{position:08X}" for position in range(rng.randint(1, 3))]
            sms_id = store_submitted_message(message_ids, text=f"Storm message {number}")
            messages[sms_id] = message_ids
        db.session.commit()
    return url, messages


def count_receipts(url: str) -> int:
    with app_context(url):
        return db.session.scalar(select(func.count()).select_from(Receipt))


def read_stored_receipts(url: str) -> list[tuple[str, str, str | None, int | None]]:
    """Return (message-id, status, message-timestamp text, part id) of every stored receipt."""
    with app_context(url):
        rows = db.session.execute(
            select(Receipt.message_id, Receipt.status, Receipt.message_time, Receipt.part_id)
        ).all()
    return [
        (
            message_id,
            status,
            message_time.astimezone(UTC).strftime(TIME_FORMAT) if message_time else None,
            part_id,
        )
        for message_id, status, message_time, part_id in rows
    ]


def read_statuses(url: str) -> tuple[dict[str, str], dict[int, str]]:
    """Return the stored status of every part (by message-id) and message (by id)."""
    with app_context(url):
        parts = db.session.execute(select(SmsPart.message_id, SmsPart.status)).all()
        messages = db.session.execute(select(Sms.id, Sms.status)).all()
    return (
        {message_id: str(status) for message_id, status in parts},
        {sms_id: str(status) for sms_id, status in messages},
    )


def status_mismatches(url: str, messages: dict[int, list[str]], receipts_by_part: dict):
    """Return the parts and messages whose stored status differs from the oracle's.

    `receipts_by_part` maps each message-id to its (status, message-timestamp) receipts.
    """
    stored_parts, stored_messages = read_statuses(url)
    part_mismatches = []
    message_mismatches = []
    for sms_id, message_ids in messages.items():
        expected_parts = []
        for message_id in message_ids:
            receipts = receipts_by_part.get(message_id, [])
            expected = expected_part_status(receipts)
            expected_parts.append(expected)
            if stored_parts[message_id] != expected:
                part_mismatches.append(
                    f"part {message_id}: stored {stored_parts[message_id]}, "
                    f"expected {expected} from {sorted(receipts)}"
                )
        expected = expected_message_status(expected_parts)
        if stored_messages[sms_id] != expected:
            message_mismatches.append(
                f"sms {sms_id}: stored {stored_messages[sms_id]}, expected {expected} "
                f"from parts {expected_parts}"
            )
    return part_mismatches, message_mismatches


# gunicorn helpers


def log_tail(log_path: Path, lines: int = 30) -> str:
    if not log_path.exists():
        return "(no log written)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def count_log_lines(log_path: Path, text: str) -> int:
    if not log_path.exists():
        return 0
    return sum(text in line for line in log_path.read_text(errors="replace").splitlines())


def wait_until_live(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    """Poll /livez until it returns 200, or fail the test with the server log."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    with storm_client.new_session() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(
                    f"gunicorn exited with code {process.returncode} before /livez "
                    f"returned 200; log:\n{log_tail(log_path)}"
                )
            try:
                if session.get(f"{base_url}/livez", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    pytest.fail(
        f"/livez did not return 200 within {SERVER_START_TIMEOUT} s; "
        f"log:\n{log_tail(log_path)}"
    )


def kill_process_group(process: subprocess.Popen) -> None:
    """Send SIGKILL to gunicorn's master and workers at once, then reap the master."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=SERVER_STOP_TIMEOUT)


def stop_gunicorn(process: subprocess.Popen) -> None:
    """Stop gunicorn with SIGTERM, or kill its process group after SERVER_STOP_TIMEOUT."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # Also catches a worker that outlived its master.
    kill_process_group(process)


@pytest.fixture
def start_gunicorn(tmp_path):
    """Return a function that starts gunicorn on a database and waits until it is live.

    The function returns the base URL, the master's Popen and the log file's path.
    Every server it started is stopped at teardown.
    """
    started = []

    def start(database_url: str):
        port = free_port()
        log_path = tmp_path / f"gunicorn-{len(started)}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "storm-test-secret-key",
            "LOG_LEVEL": "WARNING",
        }
        command = [
            sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
            "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
        ]
        with log_path.open("wb") as log_file:
            # A new session makes gunicorn the leader of its own process group, so
            # that one killpg reaches the master and every worker.
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        base_url = f"http://127.0.0.1:{port}"
        wait_until_live(base_url, process, log_path)
        return base_url, process, log_path

    yield start
    for process in started:
        stop_gunicorn(process)


# Client helpers


def random_part_receipts(rng: random.Random, message_id: str) -> list[dict]:
    """Return 2 to 4 random receipts for one part."""
    weights = [weight for weight, _ in PART_STATUS_CHOICES]
    status_sets = [statuses for _, statuses in PART_STATUS_CHOICES]
    statuses = rng.choices(status_sets, weights)[0]
    receipts = []
    for _ in range(rng.randint(2, 4)):
        same_time = None
        if receipts and rng.random() < SAME_TIME_SHARE:
            earlier = rng.choice(receipts)["message-timestamp"]
            same_time = datetime.strptime(earlier, TIME_FORMAT).replace(tzinfo=UTC)
        receipts.append(storm_client.random_receipt(rng, message_id, same_time, statuses))
    return receipts


def build_storm(messages: dict[int, list[str]], rng: random.Random) -> list[dict]:
    """Return random receipts for every part, plus identical copies of a share of them.

    The receipts of one message stay next to each other in random order, and the
    messages come in random order. send_storm deals neighbours to different clients
    in one round, so that workers handle receipts of one message at the same time.
    """
    groups = [
        [fields for message_id in message_ids for fields in random_part_receipts(rng, message_id)]
        for message_ids in messages.values()
    ]
    originals = [(index, fields) for index, group in enumerate(groups) for fields in group]
    for index, fields in rng.sample(originals, round(len(originals) * DUPLICATE_SHARE)):
        groups[index].append(dict(fields))

    rng.shuffle(groups)
    storm = []
    for group in groups:
        rng.shuffle(group)
        storm.extend(group)
    return storm


def send_storm(base_url: str, storm: list[dict], rng: random.Random):
    """Send the storm from CLIENTS processes in mixed styles and return (job, outcome) pairs.

    The clients send in rounds: in each round every client sends one receipt, and the
    round's receipts are neighbours in `storm`.
    """
    jobs = [(rng.choice(storm_client.STYLES), fields) for fields in storm]
    shares = [jobs[index::CLIENTS] for index in range(CLIENTS)]
    rounds = min(len(share) for share in shares)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(CLIENTS)
    with context.Pool(CLIENTS, storm_client.join_rounds, (barrier,)) as pool:
        outcomes = pool.starmap(
            storm_client.send_receipts, [(base_url, share, rounds) for share in shares]
        )
    return [
        pair
        for share, share_outcomes in zip(shares, outcomes, strict=True)
        for pair in zip(share, share_outcomes, strict=True)
    ]


def wait_for_first_receipt(url: str, clients) -> None:
    """Poll the database until the clients have stored a receipt."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while count_receipts(url) == 0:
        if clients.ready() or time.monotonic() > deadline:
            pytest.fail("the clients stored no receipt before the planned kill")
        time.sleep(0.05)


def group_by_part(receipts) -> dict[str, list[tuple[str, str]]]:
    """Group (message-id, status, message-timestamp, ...) rows by message-id."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for message_id, status, timestamp, *_ in receipts:
        grouped.setdefault(message_id, []).append((status, timestamp))
    return grouped


def describe_failures(failures, total: int, log_path: Path) -> str:
    first_failures = "\n".join(
        f"  {style} {fields['messageId']} {fields['status']}: {outcome}"
        for (style, fields), outcome in failures[:FAILURES_SHOWN]
    )
    locked = count_log_lines(log_path, "database is locked")
    return (
        f"{len(failures)} of {total} receipts got no 204 reply "
        f"({locked} 'database is locked' lines in the gunicorn log); first:\n{first_failures}\n"
        f"gunicorn log tail:\n{log_tail(log_path)}"
    )


def test_receipt_storm(new_database, start_gunicorn):
    seed = int(os.environ.get("STORM_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    url, messages = create_seeded_database(new_database, STORM_MESSAGES, rng)
    storm = build_storm(messages, rng)
    base_url, _process, log_path = start_gunicorn(url)

    started = time.monotonic()
    results = send_storm(base_url, storm, rng)
    elapsed = time.monotonic() - started
    print(f"sent {len(storm)} receipts in {elapsed:.1f} s (STORM_SEED={seed})")

    failures = [(job, outcome) for job, outcome in results if outcome != 204]
    assert not failures, describe_failures(failures, len(results), log_path)

    distinct = {identity_key(fields) for fields in storm}
    assert count_receipts(url) == len(distinct), (
        f"the receipt table must hold each of the {len(distinct)} identities once "
        f"(STORM_SEED={seed})"
    )

    unattached = [row for row in read_stored_receipts(url) if row[3] is None]
    assert not unattached, f"receipts stored without their part: {unattached[:FAILURES_SHOWN]}"

    receipts_by_part = group_by_part(
        (fields["messageId"], fields["status"], fields["message-timestamp"]) for fields in storm
    )
    part_mismatches, message_mismatches = status_mismatches(url, messages, receipts_by_part)
    assert not part_mismatches, (
        f"{len(part_mismatches)} parts differ from the oracle (STORM_SEED={seed}):\n"
        + "\n".join(part_mismatches[:FAILURES_SHOWN])
    )
    assert not message_mismatches, (
        f"{len(message_mismatches)} messages differ from the oracle (STORM_SEED={seed}):\n"
        + "\n".join(message_mismatches[:FAILURES_SHOWN])
    )


def test_receipts_survive_kill(new_database, start_gunicorn):
    seed = int(os.environ.get("STORM_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    url, messages = create_seeded_database(new_database, KILL_MESSAGES, rng)
    message_ids = [message_id for ids in messages.values() for message_id in ids]
    base_url, process, log_path = start_gunicorn(url)

    with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
        clients = pool.starmap_async(
            storm_client.send_until_connection_fails,
            [
                (base_url, message_ids, seed + number, CLIENT_TIME_LIMIT)
                for number in range(CLIENTS)
            ],
        )
        wait_for_first_receipt(url, clients)
        time.sleep(SEND_BEFORE_KILL)
        kill_process_group(process)
        results = clients.get(timeout=CLIENT_TIME_LIMIT + 10)

    acknowledged = [fields for client_fields, _, _ in results for fields in client_fields]
    other_replies = [reply for _, client_replies, _ in results for reply in client_replies]
    stop_reasons = [reason for _, _, reason in results]
    print(f"{len(acknowledged)} receipts got a 2xx reply before the kill (STORM_SEED={seed})")
    assert acknowledged, "no receipt got a 2xx reply before the kill"
    assert not other_replies, (
        f"replies other than 2xx before the kill: {other_replies[:FAILURES_SHOWN]}"
    )
    assert not any("time limit" in reason for reason in stop_reasons), stop_reasons

    base_url, _process, log_path = start_gunicorn(url)
    with storm_client.new_session() as session:
        health = session.get(f"{base_url}/healthz", timeout=10)
    assert health.status_code == 200, health.text

    stored = read_stored_receipts(url)
    stored_keys = {(message_id, status, timestamp) for message_id, status, timestamp, _ in stored}
    acknowledged_keys = [
        (fields["messageId"], fields["status"], fields["message-timestamp"])
        for fields in acknowledged
    ]
    lost = [key for key in acknowledged_keys if key not in stored_keys]
    assert not lost, (
        f"{len(lost)} of {len(acknowledged)} receipts with a 2xx reply are missing after the "
        f"kill (STORM_SEED={seed}); first (messageId, status, message-timestamp): "
        f"{lost[:FAILURES_SHOWN]}"
    )

    # Each receipt commits with its part and message statuses, so the kill must not
    # leave a status that disagrees with the stored receipts.
    part_mismatches, message_mismatches = status_mismatches(url, messages, group_by_part(stored))
    assert not part_mismatches, (
        f"{len(part_mismatches)} parts differ from their stored receipts after the kill:\n"
        + "\n".join(part_mismatches[:FAILURES_SHOWN])
    )
    assert not message_mismatches, (
        f"{len(message_mismatches)} messages differ from their parts after the kill:\n"
        + "\n".join(message_mismatches[:FAILURES_SHOWN])
    )

    message_id = message_ids[0]
    with storm_client.new_session() as session:
        after = storm_client.post_receipt(
            session, base_url, "form", storm_client.random_receipt(rng, message_id)
        )
    assert after.status_code == 204, f"{after.text}\n{log_tail(log_path)}"
