"""Who may call what (the pure policy of `modelyard.serving.keys`), the shape of a key's token,
the store of keys on a SQLite database, and the code points a request may not hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelyard.serving.input_checks import first_unusable, unusable
from modelyard.serving.keys import ADMIN_OFF, Granted, Refused, authorize
from modelyard.store.api_keys import ApiKeys, KeyRecord, split_token

ADMIN = "the-admin-token"


def _key(*scopes: str, revoked: bool = False) -> KeyRecord:
    now = datetime.now(UTC)
    return KeyRecord("abc123", "ci", frozenset(scopes), now, "user:me", now if revoked else None)


@pytest.mark.parametrize(
    ("scope", "token", "key", "require_keys", "admin_token", "want"),
    [
        # Open endpoints stay open without a token unless keys are required.
        ("predict", None, None, False, None, Granted(None)),
        ("feedback", None, None, False, ADMIN, Granted(None)),
        ("predict", None, None, True, ADMIN, 401),
        ("feedback", None, None, True, None, 401),
        # A key passes its own scopes, and no other; revoked, none.
        ("predict", "myk_abc123_s", _key("predict"), True, None, Granted("abc123")),
        ("feedback", "myk_abc123_s", _key("predict"), True, None, 403),
        ("admin", "myk_abc123_s", _key("predict", "feedback"), False, ADMIN, 403),
        ("admin", "myk_abc123_s", _key("admin"), False, None, Granted("abc123")),
        ("predict", "myk_abc123_s", _key("predict", revoked=True), True, None, 401),
        # A token that is presented is checked even where none is needed.
        ("predict", "myk_abc123_s", None, False, None, 401),
        ("predict", "something", None, False, ADMIN, 401),
        # The admin token passes every scope.
        ("predict", ADMIN, None, True, ADMIN, Granted(None)),
        ("feedback", ADMIN, None, True, ADMIN, Granted(None)),
        ("admin", ADMIN, None, False, ADMIN, Granted(None)),
        # Admin endpoints: never open; off (403) with no admin token and no keys required.
        ("admin", None, None, False, ADMIN, 401),
        ("admin", None, None, True, None, 401),
        ("admin", None, None, False, None, 403),
        ("admin", "wrong", None, False, None, 403),
        ("admin", "wrong", None, False, ADMIN, 401),
    ],
)
def test_the_policy(scope, token, key, require_keys, admin_token, want):
    decision = authorize(scope, token, key, require_keys, admin_token)
    if isinstance(want, Granted):
        assert decision == want
    else:
        assert isinstance(decision, Refused) and decision.status == want, decision


def test_refusals_say_what_to_do():
    missing = authorize("predict", None, None, True, None)
    assert isinstance(missing, Refused)
    assert "scope `predict`" in missing.message and "modelyard keys create" in missing.message
    lacking = authorize("feedback", "myk_abc123_s", _key("predict"), True, None)
    assert isinstance(lacking, Refused)
    assert "abc123" in lacking.message and "lacks the scope `feedback`" in lacking.message
    revoked = authorize("predict", "myk_abc123_s", _key("predict", revoked=True), True, None)
    assert isinstance(revoked, Refused) and "revoked" in revoked.message
    off = authorize("admin", None, None, False, None)
    assert isinstance(off, Refused) and off.message == ADMIN_OFF


def test_token_shape():
    assert split_token("myk_abc123_se_cr-et") == ("abc123", "se_cr-et")
    for bad in ("", "myk_", "myk_abc", "xyz_abc_secret", "Bearer myk_a_b", "myk__secret"):
        assert split_token(bad) is None, bad


def test_keys_are_made_listed_checked_and_revoked(tmp_path):
    from modelyard.store.db import engine_for

    keys = ApiKeys(engine_for(f"sqlite:///{tmp_path}/platform.db"))
    record, token = keys.create("ci", {"predict", "feedback"}, "user:me")
    assert token.startswith(f"myk_{record.id}_") and record.scopes == {"predict", "feedback"}
    assert keys.check(token) == record
    assert keys.check(token + "x") is None and keys.check("myk_nope_secret") is None
    with pytest.raises(ValueError, match="scopes must be some of"):
        keys.create("bad", {"everything"}, "user:me")
    revoked = keys.revoke(record.id)
    assert revoked.revoked and keys.check(token) == revoked
    assert [k.id for k in keys.list()] == [record.id]
    with pytest.raises(LookupError, match="no API key"):
        keys.revoke("nope")
    from sqlalchemy import text

    with keys.engine.connect() as connection:  # only the hash is kept
        (stored,) = connection.execute(text("SELECT secret_sha256 FROM api_keys")).one()
    assert token.split("_", 2)[2] not in stored


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("fine\ud800", ["character 4", "U+D800", "surrogate"]),
        ("\udfff", ["character 0", "U+DFFF"]),
        ("a\x00b", ["character 1", "U+0000", "NUL"]),
        ("x\ufffe", ["U+FFFE", "noncharacter"]),
        ("x\U0010ffff", ["U+10FFFF", "noncharacter"]),
        ("x\ufdd0", ["U+FDD0"]),
    ],
)
def test_code_points_that_are_not_text_are_named(text, words):
    problem = unusable(text)
    assert problem is not None
    for word in words:
        assert word in problem, problem


def test_text_is_text():
    for fine in ("", "plain", "émoji 🎉 and 中文", "tab\tnewline\n", "\ufeffbom", "\U0001f600"):
        assert unusable(fine) is None
    assert first_unusable("review", ["ok", "ok", "b\x00d"]) == (
        "`review`[2]: character 1 is U+0000, NUL, which no tokenizer takes"
    )
