"""Files written into the user's folders are replaced only while they are as this program wrote them."""

from __future__ import annotations

import pytest

from microcrystalnet.batch import BATCH_RESULTS_NAME, BATCH_TABLE_FILE_NAMES, run_batch
from microcrystalnet.io.owned_files import LEDGER_NAME, claim_output_folder, own_file
from microcrystalnet.io.result_folder import OutputFolderError, OutputWriteError, write_marker


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


def test_a_batch_whose_table_writing_was_cut_short_can_run_again(tmp_path, monkeypatch):
    import microcrystalnet.batch as batch_module

    out = tmp_path / "out"
    run_batch([], out, workers=0)

    def disk_full(*arguments, **options):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(batch_module, "write_batch_report", disk_full)  # the CSVs are new, the report is not
        with pytest.raises(OutputWriteError):
            run_batch([], out, workers=0)
    run_batch([], out, workers=0)  # every table it wrote is known: nothing refused


def test_tables_of_a_batch_from_before_the_ledger_are_taken_as_ours_and_a_users_file_is_not(tmp_path):
    out = tmp_path / "out"
    run_batch([], out, workers=0)
    (out / LEDGER_NAME).unlink()  # as an earlier version left it
    (out / "sample").mkdir()
    write_marker(out / "sample")  # beside its result folders
    run_batch([], out, workers=0)
    (out / LEDGER_NAME).unlink()
    (out / BATCH_RESULTS_NAME).write_text("my hand-curated table\n")
    with pytest.raises(OutputFolderError, match=BATCH_RESULTS_NAME):
        run_batch([], out, workers=0)


def _write_own_files(folder: str, prefix: str) -> None:
    from pathlib import Path

    for number in range(40):
        with own_file(Path(folder) / f"{prefix}{number}.txt") as partial:
            partial.write_text(f"{prefix}{number}")


def test_processes_writing_into_one_folder_at_once_all_have_their_files_entered(tmp_path):
    import multiprocessing

    from microcrystalnet.io.owned_files import is_own_file

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_own_files, args=(str(tmp_path), prefix)) for prefix in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    written = sorted(tmp_path.glob("*.txt"))
    assert len(written) == 80 and all(is_own_file(path) for path in written)
