"""The crowd study run inside DisFER Studio: participants, their playlists, their answers.

A participant opens the study link (`/rate?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..`, or
`?pid=..` for other recruiters, or no id at all: then a random anonymous one), consents, and rates
the images of one playlist one at a time, in an order of their own, with a few instructional
attention checks spread among them. The page (app_pages/rate.py) is thin; every rule is here:

- **Assignment** (`start`): the open playlist with the fewest live ratings (complete, plus in
  progress and not abandoned), lowest id on a tie, chosen and recorded in one transaction that
  also bumps one shared row, so two arrivals at once are serialised by the store itself (a
  write-write conflict makes one retry and see the other). A returning id resumes its own
  playlist; it never gets a second one.
- **Answers** (`answer`): each one is one small transaction. A vote lands in `votes` (so every
  analysis page sees it at once); a repeated answer for the same image (a double click, a replayed
  request) is ignored, never a second vote. The participant's place is whatever they have not
  answered yet, so a reload resumes at the next image.
- **Attention checks** are stored in `attention_checks`, never as votes. A participant who fails
  at least `fail_after` of them ends with the "failed" code; their votes stay, and the analysis
  leaves them out while the study's `exclude_failed` setting is on (the default).

Nothing a participant sends is trusted: ids must be short plain tokens, an answer must name an
image of their own plan and one of the seven emotions, and nothing is stored otherwise.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from disfer.access import Actor, require
from disfer.emotions import EMOTIONS
from disfer.errors import DisferError
from disfer.store import Store

CROWD = "study"  # the crowd the analysis reads (disfer.analysis.load_study)
# Prolific's ids are 24 hex digits; other recruiters' are similar tokens. Anything else in a link
# (quotes, markup, NUL, 10,000 characters) is refused, never stored or shown.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")
PROLIFIC_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
SETTINGS_PREFIX = "rating."
_ASSIGN_KEY = "rating.assignments"  # the one row every assignment updates (see the module)
_write_lock = threading.Lock()  # rating writes of this process, one at a time: no conflicts among them

LIVE = ("rating",)
ENDED = ("complete", "failed", "declined")


class RatingError(DisferError):
    """A participant's request that cannot be honoured (nothing was stored)."""


# -- settings ------------------------------------------------------------------------------------

DEFAULT_CONSENT = (
    "You are invited to take part in a research study on how people recognise emotions in faces. "
    "You will see about 40 small photographs of faces and choose, for each, the emotion it shows. "
    "It takes about 10 minutes. Taking part is voluntary; you may stop at any time. Your answers are "
    "stored with your participant id only and are used for research. Do you agree to take part?")
DEFAULT_INSTRUCTIONS = (
    "You will see faces one at a time. For each, choose the emotion the face shows: click its button "
    "or press its key (1 to 7). There is no time limit, but your first impression is what we want. "
    "Some screens ask you to press a particular button: please do as they say.")


@dataclass(frozen=True)
class RatingSettings:
    """A study's rating settings (admin), kept in study_meta under `rating.<name>`."""

    consent_text: str = DEFAULT_CONSENT
    instructions: str = DEFAULT_INSTRUCTIONS
    code_completed: str = ""
    code_failed: str = ""
    code_no_consent: str = ""
    completion_url: str = "https://app.prolific.com/submissions/complete"
    checks: int = 2  # attention checks per participant
    fail_after: int = 2  # failed checks that fail a participant (capped at `checks`)
    target: int = 50  # complete ratings wanted per playlist (the paper: about 50 per image)
    abandon_minutes: int = 60  # a session silent this long no longer holds its playlist's place
    exclude_failed: bool = True  # the analysis leaves out participants who failed the checks

    def redirect(self, code: str) -> str | None:
        """Where to send a participant who ended with `code`, or None (no URL or no code set)."""
        if not self.completion_url or not code:
            return None
        return f"{self.completion_url}?cc={code}"


_LIMITS = {"checks": (0, 10), "fail_after": (1, 10), "target": (1, 100_000), "abandon_minutes": (5, 7 * 24 * 60)}


def check_settings(settings: RatingSettings) -> RatingSettings:
    """The settings, or a ConfigError-like RatingError naming the first bad one."""
    for name in ("consent_text", "instructions"):
        text = getattr(settings, name)
        if not text.strip() or len(text) > 10_000 or "\x00" in text:
            raise RatingError(f"{name.replace('_', ' ')}: 1 to 10,000 characters of text")
    for name in ("code_completed", "code_failed", "code_no_consent"):
        code = getattr(settings, name)
        if code and not _CODE.fullmatch(code):
            raise RatingError(f"{name.replace('_', ' ')}: letters, digits, '-' and '_' only (at most 40)")
    url = settings.completion_url
    if url and not re.fullmatch(r"https?://[^\s\"'<>\x00]{1,500}", url):
        raise RatingError("completion URL: an http(s) address without spaces or quotes")
    if url and "?" in url:
        raise RatingError("completion URL: without a query (the code is added as ?cc=CODE)")
    for name, (low, high) in _LIMITS.items():
        value = getattr(settings, name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise RatingError(f"{name.replace('_', ' ')}: a whole number from {low} to {high}")
    return settings


def read_settings(store: Store) -> RatingSettings:
    with store.read() as con:
        return _settings(con)


def _settings(con) -> RatingSettings:
    rows = con.execute("SELECT key, value FROM study_meta WHERE starts_with(key, ?)", [SETTINGS_PREFIX]).fetchall()
    stored = {key[len(SETTINGS_PREFIX):]: value for key, value in rows}
    values = {}
    for f in fields(RatingSettings):
        if f.name in stored:
            try:
                values[f.name] = json.loads(stored[f.name])
            except ValueError:
                continue  # a hand-edited value we cannot read: the default holds
    try:
        return check_settings(replace(RatingSettings(), **values))
    except (RatingError, TypeError):
        return RatingSettings()


def save_settings(store: Store, settings: RatingSettings, admin: Actor) -> None:
    require(admin, "settings")
    check_settings(settings)

    def write(con) -> None:
        for name, value in asdict(settings).items():
            con.execute("INSERT OR REPLACE INTO study_meta (key, value) VALUES (?, ?)",
                        [SETTINGS_PREFIX + name, json.dumps(value)])

    store.write_retrying(write)


def exclude_failed(con) -> bool:
    """The study's `exclude_failed` setting, read on an open connection (the analysis' loader)."""
    row = con.execute("SELECT value FROM study_meta WHERE key = ?", [SETTINGS_PREFIX + "exclude_failed"]).fetchone()
    return row is None or row[0] != "false"


# -- identity from the link ----------------------------------------------------------------------

@dataclass(frozen=True)
class Arrival:
    """Who opened the link: the participant id and what the recruiter told us about them."""

    participant_id: str
    attributes: dict
    anonymous: bool = False


def arrival_from_link(params: dict[str, str]) -> Arrival:
    """The participant a link names (Prolific's parameters, or `pid`, or none: a new anonymous id).

    RatingError for a parameter that is not a plain short token: a tampered link stores nothing.
    """
    given = {}
    for name in (*PROLIFIC_PARAMS, "pid"):
        value = params.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            raise RatingError(f"the link's {name} is not a valid id")
        given[name] = value
    if "PROLIFIC_PID" in given:
        attrs = {"recruiter": "prolific", **{k: v for k, v in given.items() if k in PROLIFIC_PARAMS}}
        return Arrival(given["PROLIFIC_PID"], attrs)
    if "pid" in given:
        return Arrival(given["pid"], {"recruiter": "link"})
    return Arrival(f"anon-{secrets.token_hex(8)}", {"recruiter": "anonymous"}, anonymous=True)


# -- the participant's plan ----------------------------------------------------------------------

@dataclass(frozen=True)
class Item:
    """One screen: a face to rate, or an attention check (`check_no` > 0) asking for `expected`."""

    stimulus_id: str
    check_no: int = 0
    expected: str | None = None

    @property
    def is_check(self) -> bool:
        return self.check_no > 0


def plan(stimulus_ids: list[str], checks: int, seed: int) -> list[Item]:
    """The participant's screens: their playlist in a random order of their own, with `checks`
    attention checks spread evenly (never first or last), each on a face of the playlist and asking
    for a random emotion. Pure: the same seed gives the same plan (a reload resumes it)."""
    rng = np.random.default_rng(seed)
    order = [stimulus_ids[i] for i in rng.permutation(len(stimulus_ids))]
    items = [Item(sid) for sid in order]
    if not order:
        return items
    faces = rng.choice(len(order), size=checks)
    asked = rng.choice(len(EMOTIONS), size=checks)
    # Insert from the back so earlier positions stay put: check k sits after image k*n/(checks+1).
    for k in range(checks, 0, -1):
        at = max(1, round(k * len(order) / (checks + 1)))
        items.insert(at, Item(order[int(faces[k - 1])], check_no=k, expected=EMOTIONS[int(asked[k - 1])]))
    return items


# -- state ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """Where a participant stands. `items` is their plan, `answered` the positions in it they have
    answered (always its first ones: only the next screen is accepted); status: rating | complete
    | failed | declined."""

    participant_id: str
    status: str
    playlist_id: int | None
    items: tuple[Item, ...]
    answered: frozenset[int]
    failed_checks: int

    @property
    def done(self) -> int:
        return len(self.answered)

    @property
    def next_item(self) -> Item | None:
        if self.status != "rating":
            return None
        return next((it for i, it in enumerate(self.items) if i not in self.answered), None)

    @property
    def total(self) -> int:
        return len(self.items)


def _playlist_ids(con, playlist_id: int) -> list[str]:
    rows = con.execute("SELECT stimulus_id FROM playlists WHERE playlist_id = ? ORDER BY position, stimulus_id",
                       [playlist_id]).fetchall()
    return [r[0] for r in rows]


def _session(con, participant_id: str) -> Session | None:
    row = con.execute("SELECT status, playlist_id, order_seed, checks FROM rating_sessions WHERE participant_id = ?",
                      [participant_id]).fetchone()
    if row is None:
        return None
    status, playlist_id, seed, checks = row
    if playlist_id is None:
        return Session(participant_id, status, None, (), frozenset(), 0)
    # `checks` as fixed at the start: a later change of the setting must not reshuffle a plan half done.
    items = tuple(plan(_playlist_ids(con, playlist_id), checks, seed))
    voted = {r[0] for r in con.execute("SELECT stimulus_id FROM votes WHERE participant_id = ?",
                                       [participant_id]).fetchall()}
    checked = dict(con.execute("SELECT check_no, answered = expected FROM attention_checks WHERE participant_id = ?",
                               [participant_id]).fetchall())
    answered = frozenset(i for i, it in enumerate(items)
                         if (it.check_no in checked if it.is_check else it.stimulus_id in voted))
    return Session(participant_id, status, playlist_id, items, answered, sum(1 for ok in checked.values() if not ok))


def session(store: Store, participant_id: str) -> Session | None:
    """The participant's session, or None if this id has not answered the consent yet."""
    with store.read() as con:
        return _session(con, participant_id)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _write(store: Store, fn, *args):
    with _write_lock:
        return store.write_retrying(fn, *args)


def open_playlists(con) -> list[int]:
    return [r[0] for r in con.execute(
        "SELECT DISTINCT playlist_id FROM playlists WHERE playlist_id NOT IN (SELECT playlist_id FROM closed_playlists)"
        " ORDER BY playlist_id").fetchall()]


_LIVE_COUNTS = """
SELECT playlist_id, count(*) FILTER (WHERE status = 'complete'
       OR (status = 'rating' AND last_seen_at >= ?)) AS live
FROM rating_sessions WHERE playlist_id IS NOT NULL GROUP BY playlist_id
"""


def start(store: Store, arrival: Arrival, consent: bool) -> Session:
    """Record the participant's answer to the consent; on yes, give them a playlist (see the
    module). A returning id gets its own session back, whatever it answers now."""

    def write(con) -> Session:
        settings = _settings(con)
        known = _session(con, arrival.participant_id)
        if known is not None:
            return known
        if con.execute("SELECT 1 FROM participants WHERE participant_id = ?", [arrival.participant_id]).fetchone():
            raise RatingError("this participant id has already taken part in the study")
        now = _now()
        seed = secrets.randbits(62)
        playlist_id = None
        status = "declined"
        if consent:
            status = "rating"
            candidates = open_playlists(con)
            if not candidates:
                raise RatingError("the study is not open: no playlist is open for rating")
            live = dict(con.execute(_LIVE_COUNTS, [now - timedelta(minutes=settings.abandon_minutes)]).fetchall())
            counts = {p: live.get(p, 0) for p in candidates}
            below = [p for p in candidates if counts[p] < settings.target]
            if not below:
                raise RatingError("the study is full: every playlist has all the ratings it needs")
            playlist_id = min(below, key=lambda p: (counts[p], p))
        # The shared row: concurrent assignments conflict here and one retries, seeing the other.
        con.execute("INSERT INTO study_meta VALUES (?, '1') ON CONFLICT (key) DO UPDATE SET value = "
                    "CAST(CAST(study_meta.value AS BIGINT) + 1 AS TEXT)", [_ASSIGN_KEY])
        con.execute("INSERT INTO participants (participant_id, crowd, attributes) VALUES (?, ?, ?)",
                    [arrival.participant_id, CROWD, json.dumps(arrival.attributes)])
        con.execute("INSERT INTO rating_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [arrival.participant_id, playlist_id, seed, settings.checks if consent else 0, status,
                     now, now, None if consent else now])
        return _session(con, arrival.participant_id)

    return _write(store, write)


def answer(store: Store, participant_id: str, item: Item, emotion: str, rt_ms: float | None) -> Session:
    """Store the participant's answer to the screen they are on; the session after it.

    A screen they answered already changes nothing, whenever it comes (a double click, a replayed
    request): no second vote, no error. Refused (RatingError, nothing stored): an unknown
    participant, one who has finished, a screen not in their plan or not the next one, an
    emotion not among the seven. One transaction, on one connection."""
    if emotion not in EMOTIONS:
        raise RatingError("the answer is not one of the seven emotions")
    if rt_ms is not None and not (0 <= rt_ms < 86_400_000):
        rt_ms = None

    def write(con) -> Session:
        before = _session(con, participant_id)
        if before is None:
            raise RatingError("unknown participant: open the study link again")
        if item not in before.items:
            raise RatingError("that image is not in this participant's playlist")
        position = before.items.index(item)
        if position in before.answered:
            return before  # a replay
        if before.status != "rating":
            raise RatingError("this participant has finished the study")
        if item != before.next_item:
            raise RatingError("that image is not the one on this participant's screen")
        now = _now()
        if item.is_check:
            con.execute("INSERT INTO attention_checks VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [participant_id, item.check_no, item.stimulus_id, item.expected, emotion, rt_ms, now])
        else:
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion, rt_ms, answered_at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", [participant_id, item.stimulus_id, emotion, rt_ms, now])
        after = replace(before, answered=before.answered | {position},
                        failed_checks=before.failed_checks + int(item.is_check and emotion != item.expected))
        status = "rating"
        if after.done >= after.total:
            status = "failed" if failed_the_checks(after, _settings(con)) else "complete"
        con.execute("UPDATE rating_sessions SET last_seen_at = ?, status = ?, finished_at = ? WHERE participant_id = ?",
                    [now, status, now if status != "rating" else None, participant_id])
        return replace(after, status=status)

    return _write(store, write)


def failed_the_checks(session: Session, settings: RatingSettings) -> bool:
    """At least `fail_after` of the participant's checks answered wrongly (all of them, where
    their plan holds fewer)."""
    in_plan = sum(1 for it in session.items if it.is_check)
    return in_plan > 0 and session.failed_checks >= min(settings.fail_after, in_plan)


def end_code(settings: RatingSettings, status: str) -> str:
    return {"complete": settings.code_completed, "failed": settings.code_failed,
            "declined": settings.code_no_consent}.get(status, "")


# -- the admin's view ----------------------------------------------------------------------------

def set_playlist_closed(store: Store, playlist_id: int, closed: bool, admin: Actor) -> None:
    require(admin, "settings")

    def write(con) -> None:
        if not con.execute("SELECT 1 FROM playlists WHERE playlist_id = ?", [playlist_id]).fetchone():
            raise RatingError(f"there is no playlist {playlist_id}")
        if closed:
            con.execute("INSERT INTO closed_playlists VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [playlist_id, _now(), admin.name])
        else:
            con.execute("DELETE FROM closed_playlists WHERE playlist_id = ?", [playlist_id])

    _write(store, write)


_PROGRESS_SQL = """
WITH lists AS (SELECT playlist_id, count(*) AS images FROM playlists GROUP BY playlist_id),
s AS (SELECT playlist_id,
        count(*) FILTER (WHERE status = 'complete') AS complete,
        count(*) FILTER (WHERE status = 'rating' AND last_seen_at >= ?) AS in_progress,
        count(*) FILTER (WHERE status = 'rating' AND last_seen_at < ?) AS abandoned,
        count(*) FILTER (WHERE status = 'failed') AS failed
      FROM rating_sessions WHERE playlist_id IS NOT NULL GROUP BY playlist_id)
SELECT l.playlist_id, l.images, coalesce(s.complete, 0) AS complete, coalesce(s.in_progress, 0) AS in_progress,
       coalesce(s.abandoned, 0) AS abandoned, coalesce(s.failed, 0) AS failed,
       c.playlist_id IS NOT NULL AS closed
FROM lists l LEFT JOIN s USING (playlist_id) LEFT JOIN closed_playlists c USING (playlist_id)
ORDER BY l.playlist_id
"""


def progress(store: Store) -> pd.DataFrame:
    """One row per playlist: images, complete, in_progress, abandoned, failed, closed, and
    `toward_target` (complete / target, 0..1)."""
    settings = read_settings(store)
    cutoff = _now() - timedelta(minutes=settings.abandon_minutes)
    with store.read() as con:
        table = con.execute(_PROGRESS_SQL, [cutoff, cutoff]).df()
    for col in ("images", "complete", "in_progress", "abandoned", "failed"):
        table[col] = table[col].astype(int)
    table["closed"] = table["closed"].astype(bool)
    table["toward_target"] = (table["complete"] / settings.target).clip(upper=1.0)
    return table


def summary(store: Store) -> dict:
    """The study's figures for the admin page; None where nothing is measured yet."""
    with store.read() as con:
        by_status = dict(con.execute("SELECT status, count(*) FROM rating_sessions GROUP BY status").fetchall())
        checks, wrong = con.execute("SELECT count(*), count(*) FILTER (WHERE answered <> expected) "
                                    "FROM attention_checks").fetchone()
        median_rt = con.execute("SELECT median(v.rt_ms) FROM votes v JOIN rating_sessions r USING (participant_id)"
                                ).fetchone()[0]
        votes = con.execute("SELECT count(*) FROM votes v JOIN rating_sessions r USING (participant_id)").fetchone()[0]
    finished = by_status.get("complete", 0) + by_status.get("failed", 0)
    return {
        "participants": sum(by_status.values()),
        "complete": by_status.get("complete", 0),
        "failed": by_status.get("failed", 0),
        "declined": by_status.get("declined", 0),
        "rating": by_status.get("rating", 0),
        "votes": int(votes),
        "checks_answered": int(checks),
        "check_error_rate": (wrong / checks) if checks else None,
        # not measured until someone has finished with checks in their plan
        "failure_rate": (by_status.get("failed", 0) / finished) if finished and checks else None,
        "median_rt_ms": float(median_rt) if median_rt is not None else None,
    }


def rating_failures(store: Store) -> list[str]:
    """Participant ids who failed the attention checks (their votes are kept, and left out of the
    analysis by default)."""
    with store.read() as con:
        return [r[0] for r in con.execute(
            "SELECT participant_id FROM rating_sessions WHERE status = 'failed' ORDER BY participant_id").fetchall()]


def study_link(base_url: str) -> str:
    """The address to paste into Prolific: its placeholders are filled in per participant."""
    return (base_url.rstrip("/") + "/rate?" + "&".join(f"{p}={{{{%{p}%}}}}" for p in PROLIFIC_PARAMS))
