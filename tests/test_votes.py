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


def test_attributes_are_numbers_only_when_plain_ascii(built_study, tmp_path):
    s1, s2, s3 = _stimulus_ids(built_study, 3)
    path = tmp_path / "votes.csv"
    path.write_text("participant_id,stimulus_id,emotion,age,code,ref,score,\n"
                    f"p1,{s1},happy,\u0663\u0664,0.1_0,12345678901234567890,1e3,\n"
                    f"p2,{s2},happy,34,0x1,007,-0.5,\n"
                    f"p3,{s3},happy,,,,,\n")
    assert import_votes(built_study, path) == 3
    people = _table(built_study, "participants").set_index("participant_id")
    assert json.loads(people.loc["p1", "attributes"]) == {
        "age": "\u0663\u0664", "code": "0.1_0", "ref": "12345678901234567890", "score": 1000.0}
    assert json.loads(people.loc["p2", "attributes"]) == {"age": 34, "code": "0x1", "ref": 7, "score": -0.5}
    assert not isinstance(people.loc["p3", "attributes"], str)  # NULL: no attributes


@pytest.mark.parametrize("header,value,problem", [
    ("score", "NaN", "row 3: score 'NaN' is not a finite number"),
    ("score", "+Infinity", "row 3: score '+Infinity' is not a finite number"),
    ("score", "-1e400", "row 3: score '-1e400' is not a finite number"),
    ("rt_ms", "nan", "row 3: rt_ms 'nan' is not a finite time"),
    ("rt_ms", "1_0", "row 3: rt_ms '1_0'"),
    ("rt_ms", "\uff11", "row 3: rt_ms '\uff11'"),
    ("answered_at", "\uff12\uff10\uff12\uff14-01-01", "row 3: answered_at"),
    ("answered_at", "9999-12-31T23:59:59-01:00", "row 3: answered_at '9999-12-31T23:59:59-01:00' is out of range"),
    ("", "x", "row 3: column 4 has no name in the header but holds 'x'"),
    ("stimulus_id", "x", "row 1: column 'stimulus_id' appears twice"),
])
def test_hostile_vote_values_are_refused_and_nothing_is_written(built_study, tmp_path, header, value, problem):
    s1, s2 = _stimulus_ids(built_study, 2)
    path = tmp_path / "votes.csv"
    path.write_text(f"participant_id,stimulus_id,emotion,{header}\np0,{s1},neutral,\np1,{s2},happy,{value}\n")
    before = (_table(built_study, "votes"), _table(built_study, "participants"))
    with pytest.raises(InputError) as err:
        import_votes(built_study, path)
    assert str(err.value).startswith(f"{path}: {problem}"), str(err.value)
    assert _table(built_study, "votes").equals(before[0])
    assert _table(built_study, "participants").equals(before[1])


def test_participants_file_values_follow_the_same_rules(built_study, tmp_path):
    (s1,) = _stimulus_ids(built_study, 1)
    (tmp_path / "v.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s1},happy\n")
    for content, problem in [("participant_id,score\np1,inf\n", "row 2: score 'inf' is not a finite number"),
                             ("participant_id,age,age\np1,3,4\n", "row 1: column 'age' appears twice"),
                             ("participant_id,age\np\x001,3\n", "row 2: column participant_id: control character")]:
        (tmp_path / "p.csv").write_text(content)
        with pytest.raises(InputError) as err:
            import_votes(built_study, tmp_path / "v.csv", participants_path=tmp_path / "p.csv")
        assert str(err.value).startswith(f"{tmp_path / 'p.csv'}: {problem}"), str(err.value)
    assert _table(built_study, "votes").empty


def test_a_vote_already_in_the_store_is_named_by_its_row(built_study, tmp_path):
    s1, s2, s3 = _stimulus_ids(built_study, 3)
    (tmp_path / "v1.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s2},happy\n")
    import_votes(built_study, tmp_path / "v1.csv")
    (tmp_path / "v2.csv").write_text(f"participant_id,stimulus_id,emotion\np1,{s1},sad\np2,{s2},sad\n"
                                     f"p1,{s3},fear\np1,{s2},sad\n")
    with pytest.raises(InputError, match=f"row 5: participant 'p1' already has a vote for '{s2}'"):
        import_votes(built_study, tmp_path / "v2.csv")
    assert len(_table(built_study, "votes")) == 1


def test_times_are_stored_in_utc_to_the_microsecond(built_study, tmp_path):
    s1, s2 = _stimulus_ids(built_study, 2)
    path = tmp_path / "votes.csv"
    path.write_text("participant_id,stimulus_id,emotion,answered_at\n"
                    f"p1,{s1},happy,0001-01-01T00:00:00\np1,{s2},happy,2024-03-01T01:30:00.123456+02:00\n")
    assert import_votes(built_study, path) == 2
    times = _table(built_study, "votes").set_index("stimulus_id")["answered_at"]
    assert str(times[s2]) == "2024-02-29 23:30:00.123456"
    with built_study.read() as con:
        assert con.execute("SELECT min(answered_at)::TEXT FROM votes").fetchall()[0][0] == "0001-01-01 00:00:00"
