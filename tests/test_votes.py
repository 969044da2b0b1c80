"""Importing crowd votes and participants."""

from __future__ import annotations

import json

import pytest

from disfer.data.votes import import_votes
from disfer.errors import InputError


def _stimulus_ids(store, n):
    with store.read() as con:
        return [r[0] for r in con.execute("SELECT stimulus_id FROM stimuli ORDER BY stimulus_id LIMIT ?",
                                          [n]).fetchall()]


def _table(store, name):
    with store.read() as con:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()


def test_votes_with_extra_columns_create_participants_with_attributes(built_study, tmp_path):
    s1, s2 = _stimulus_ids(built_study, 2)
    path = tmp_path / "votes.csv"
    path.write_text("participant_id,stimulus_id,emotion,rt_ms,answered_at,age,gender\n"
                    f"p1,{s1},happy,812.5,2024-03-01T10:00:00,34,f\n"
                    f"p1,{s2},Sadness,,2024-03-01T10:00:05Z,34,f\n"
                    f"p2,{s1},surprise,1200,,,m\n")
    assert import_votes(built_study, path) == 3
    votes = _table(built_study, "votes").set_index(["participant_id", "stimulus_id"])
    assert votes.loc[("p1", s1), "emotion"] == "happiness"
    assert votes.loc[("p1", s2), "emotion"] == "sadness"
    assert votes.loc[("p1", s1), "rt_ms"] == 812.5
    assert str(votes.loc[("p1", s2), "answered_at"]) == "2024-03-01 10:00:05"
    people = _table(built_study, "participants").set_index("participant_id")
    assert set(people["crowd"]) == {"study"}
    assert json.loads(people.loc["p1", "attributes"]) == {"age": 34, "gender": "f"}
    assert json.loads(people.loc["p2", "attributes"]) == {"gender": "m"}


def test_participants_file_adds_attributes_and_later_imports_reuse_participants(built_study, tmp_path):
    s1, s2 = _stimulus_ids(built_study, 2)
    (tmp_path / "v1.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s1},fear\n")
    (tmp_path / "people.csv").write_text("participant_id,age,country\np1,41,FR\np9,22,DE\n")
    import_votes(built_study, tmp_path / "v1.csv", participants_path=tmp_path / "people.csv")
    (tmp_path / "v2.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s2},anger\n")
    assert import_votes(built_study, tmp_path / "v2.csv") == 1
    people = _table(built_study, "participants").set_index("participant_id")
    assert sorted(people.index) == ["p1", "p9"]
    assert json.loads(people.loc["p1", "attributes"]) == {"age": 41, "country": "FR"}
    assert len(_table(built_study, "votes")) == 2


@pytest.mark.parametrize("body,problem", [
    ("p1,{s1},happy\np1,{s1},sad\n", "row 3: duplicate vote"),
    ("p1,nope-original-0,happy\n", "row 2: unknown stimulus_id 'nope-original-0'"),
    ("p1,{s1},bored\n", "row 2: unknown emotion 'bored'"),
    ("p1,{s1},3\n", "row 2: unknown emotion '3'"),
    (",{s1},happy\n", "row 2: empty participant_id"),
])
def test_bad_votes_are_refused_and_nothing_is_written(built_study, tmp_path, body, problem):
    (s1,) = _stimulus_ids(built_study, 1)
    path = tmp_path / "votes.csv"
    path.write_text(f"participant_id,stimulus_id,emotion\np0,{s1},neutral\n"
                    + body.format(s1=s1).replace("row 2", "row 3"))
    before = (_table(built_study, "votes"), _table(built_study, "participants"))
    with pytest.raises(InputError) as err:
        import_votes(built_study, path)
    # The bad line is the file's third row (the header is row 1, a good vote row 2).
    expected = problem.replace("row 3", "row 4").replace("row 2", "row 3")
    assert str(err.value).startswith(f"{path}: {expected}")
    assert _table(built_study, "votes").equals(before[0])
    assert _table(built_study, "participants").equals(before[1])


def test_a_vote_already_in_the_store_is_a_duplicate(built_study, tmp_path):
    (s1,) = _stimulus_ids(built_study, 1)
    path = tmp_path / "votes.csv"
    path.write_text(f"participant_id,stimulus_id,emotion\np1,{s1},happy\n")
    import_votes(built_study, path)
    with pytest.raises(InputError, match="already has a vote"):
        import_votes(built_study, path)
