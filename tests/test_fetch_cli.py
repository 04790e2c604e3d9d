"""The shared part of the fetch scripts: options, error handling, exit codes."""
from pathlib import Path

from anolearn.data.download import ChecksumError
from anolearn.data.fetch_cli import fetch_parser, print_ready, resolve_roots, run_guarded


def test_options_and_roots(tmp_path):
    parser = fetch_parser("doc", "visa", raw=True, workers=True)
    args = parser.parse_args(["--root", str(tmp_path / "visa"), "--workers", "3", "--delete-raw"])
    root, raw_root = resolve_roots(args, "visa")
    assert root == (tmp_path / "visa").resolve() and raw_root == (tmp_path / "visa_raw").resolve()
    assert args.workers == 3 and args.delete_raw and args.download_dir is None and not args.delete_archive
    plain = fetch_parser("doc", "dtd").parse_args([])
    assert resolve_roots(plain, "dtd")[1] is None and not hasattr(plain, "workers")


def test_run_guarded_exit_codes(capsys):
    assert run_guarded(lambda: 42) == (42, 0)

    def bad_checksum():
        raise ChecksumError("Checksum mismatch for x.zip")

    assert run_guarded(bad_checksum) == (None, 1)
    assert capsys.readouterr().err.startswith("error: Checksum mismatch for x.zip")

    def interrupted():
        raise KeyboardInterrupt

    assert run_guarded(interrupted) == (None, 130)
    assert "Run the same command again" in capsys.readouterr().err


def test_print_ready_names_a_loading_command(capsys):
    print_ready("VisA", Path("/data/visa"), "candle", "12 objects")
    out = capsys.readouterr().out
    assert "VisA is ready in /data/visa (12 objects)." in out and "MVTecDataset('/data/visa', 'candle'" in out
