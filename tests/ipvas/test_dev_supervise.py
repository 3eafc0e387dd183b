"""``python3 dev.py up`` keeps a worker that exits running (issue #11, item 1): it is started again,
with a pause that grows while it keeps exiting, and the web server goes on serving; a web server that
exits stops everything, and Ctrl-C stops everything, leaving no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def supervisor(tmp_path: Path, programs: dict[str, str]) -> subprocess.Popen[str]:
    """dev.py's supervise() in a process of its own (it installs signal handlers), with short pauses;
    each of ``programs`` (name -> Python source) is one supervised process."""
    processes = {}
    for name, source in programs.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        processes[name] = [sys.executable, str(tmp_path / f"{name}.py")]
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import dev
        dev.RESTART_BACKOFF_SECONDS = (0.2, 0.4)
        sys.exit(dev.supervise({processes!r}, {{}}, []))
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)


def test_a_worker_that_exits_is_started_again_and_the_web_server_keeps_running(tmp_path):
    starts = tmp_path / "worker-starts"
    web_alive = tmp_path / "web-alive"
    process = supervisor(
        tmp_path,
        {
            "web": f"""
                import pathlib, time
                while True:
                    pathlib.Path({str(web_alive)!r}).touch()
                    time.sleep(0.1)
            """,
            "worker": f"""
                import sys
                open({str(starts)!r}, "a").write("x")
                sys.exit(3)
            """,
        },
    )
    try:
        deadline = time.monotonic() + 30
        while (not starts.exists() or len(starts.read_text()) < 3) and time.monotonic() < deadline:
            time.sleep(0.1)
        still_running = process.poll() is None
        web_recent = web_alive.exists() and time.time() - web_alive.stat().st_mtime < 2
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]

    assert starts.exists() and len(starts.read_text()) >= 3, output
    assert still_running and web_recent, output
    assert "worker stopped (exit 3); starting it again" in output
    assert process.returncode == 0, output
    time.sleep(0.5)
    assert time.time() - web_alive.stat().st_mtime > 0.4, "the web process outlived the supervisor"


def test_a_web_server_that_exits_stops_everything(tmp_path):
    process = supervisor(tmp_path, {"web": "import sys; sys.exit(4)", "worker": "import time; time.sleep(60)"})
    output = process.communicate(timeout=60)[0]

    assert "web stopped (exit 4); stopping the others" in output
    assert process.returncode == 4


def test_the_banner_names_the_files_of_a_var_dir_outside_the_checkout(tmp_path):
    """``IPVAS_VAR_DIR=/srv/... python3 dev.py prod`` stopped after migrating, on its banner (ValueError of
    Path.relative_to), and the banner sent the admin's password to var/ whatever IPVAS_VAR_DIR said."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        import dev
        key = Path({str(tmp_path)!r}) / "demo_epg_key.txt"
        key.write_text("abc.def")
        print("\\n".join(dev._banner("http://127.0.0.1:8820", key)))
        """
    )
    env = {"PATH": "/usr/bin:/bin", "IPVAS_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"password in {tmp_path / 'demo_admin_password.txt'}" in result.stdout
    assert f"demo EPG key in {tmp_path / 'demo_epg_key.txt'}: Authorization: Api-Key abc.def" in result.stdout
