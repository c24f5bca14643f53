"""Files written into the user's folders are replaced only while they are as this program wrote them."""

from __future__ import annotations

import pytest

from microcrystalnet.batch import BATCH_RESULTS_NAME, BATCH_TABLE_FILE_NAMES, run_batch
from microcrystalnet.io.owned_files import LEDGER_NAME, claim_output_folder, own_file
from microcrystalnet.io.result_folder import OutputFolderError


def test_a_file_of_the_users_is_never_replaced_and_ours_is_until_someone_changes_it(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("my notes")
    with pytest.raises(OutputFolderError, match="not written by MicroCrystalNet") as refused:
        with own_file(target) as partial:
            partial.write_text("ours")
    assert str(target) in str(refused.value) and target.read_text() == "my notes"

    ours = tmp_path / "ours.json"
    for content in ("first", "second"):  # written by us, so replaced
        with own_file(ours) as partial:
            partial.write_text(content)
    assert ours.read_text() == "second" and (tmp_path / LEDGER_NAME).is_file()
    ours.write_text("edited by hand")  # now the user's
    with pytest.raises(OutputFolderError):
        with own_file(ours) as partial:
            partial.write_text("third")
    assert ours.read_text() == "edited by hand"


def test_a_batch_refuses_to_start_over_a_users_file_at_a_table_name_and_rebuilds_its_own(tmp_path):
    out = tmp_path / "out"
    run_batch([], out, workers=0)
    tables = {name: (out / name).read_bytes() for name in BATCH_TABLE_FILE_NAMES if (out / name).is_file()}
    assert BATCH_RESULTS_NAME in tables
    run_batch([], out, workers=0)  # its own tables: rebuilt without a word
    (out / BATCH_RESULTS_NAME).write_text("my hand-curated table\n")
    with pytest.raises(OutputFolderError, match=BATCH_RESULTS_NAME):
        run_batch([], out, workers=0)
    assert (out / BATCH_RESULTS_NAME).read_text() == "my hand-curated table\n"


def test_output_folders_are_claimed_only_when_new_empty_or_ours(tmp_path):
    assert claim_output_folder(tmp_path / "new").is_dir()
    (tmp_path / "empty").mkdir()
    claim_output_folder(tmp_path / "empty")
    claim_output_folder(tmp_path / "empty")  # claimed before: ours
    (tmp_path / "users").mkdir()
    (tmp_path / "users" / "thesis.docx").write_text("x")
    with pytest.raises(OutputFolderError, match="did not write"):
        claim_output_folder(tmp_path / "users")
    assert sorted(p.name for p in (tmp_path / "users").iterdir()) == ["thesis.docx"]
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "model.keras.json").write_text("{}")
    claim_output_folder(tmp_path / "old-run", earlier_run_sign="model.keras.json")  # a run of an earlier version
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputFolderError, match="not a folder"):
        claim_output_folder(tmp_path / "a-file")
