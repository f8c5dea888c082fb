"""client/remote.py's pure parts: the ssh command line, ssh's errors as one line each.

The same transport against a real sshd: tests/faults/test_remote_ssh.py.
"""

from __future__ import annotations

import shlex

import pytest

from flashtui import __version__
from flashtui.client.remote import SshTarget, ssh_failure, version_mismatch
from flashtui.core.protocol import WorkerReady
from flashtui.errors import UsageError


def target(**environ: str) -> SshTarget:
    return SshTarget.from_options("gpu-box", None, environ=environ)


def test_ssh_command_puts_env_on_the_remote_command_line():
    t = SshTarget.from_options("me@gpu-box", "/opt/venv/bin/python -X utf8", environ={
        "FLASHTUI_SSH": "ssh -p 2222 -i '/keys/my key'",
        "FLASHTUI_REMOTE_ENV": "PYTHONPATH='/src/flash tui' CUDA_VISIBLE_DEVICES=1",
        "FLASHTUI_INJECT_FAULT": "segfault@standard@64",
        "HOME": "/not/forwarded",
    })
    argv = t.python_argv(["-m", "flashtui.worker"], prefix=["py-spy", "record", "--"])
    assert argv[:4] == ["ssh", "-p", "2222", "-i"] and argv[4] == "/keys/my key"
    # The user's options come first: ssh keeps the first value, so theirs win over ours.
    assert argv.index("BatchMode=yes") > argv.index("-i") and "-T" in argv
    assert argv[-2] == "me@gpu-box"
    remote = shlex.split(argv[-1])  # what the remote shell will run
    assert remote == ["env", "PYTHONUNBUFFERED=1", "FLASHTUI_INJECT_FAULT=segfault@standard@64",
                      "PYTHONPATH=/src/flash tui", "CUDA_VISIBLE_DEVICES=1",
                      "py-spy", "record", "--", "/opt/venv/bin/python", "-X", "utf8", "-m", "flashtui.worker"]


@pytest.mark.parametrize("host", ["", "-oProxyCommand=touch /tmp/x", "a b"])
def test_a_host_that_is_not_a_host_is_a_usage_error(host):
    with pytest.raises(UsageError, match="--host must be a host name"):
        SshTarget.from_options(host, None, environ={})


def test_bad_remote_env_is_a_usage_error():
    with pytest.raises(UsageError, match="NAME=VALUE"):
        target(FLASHTUI_REMOTE_ENV="PYTHONPATH")
    with pytest.raises(UsageError, match="FLASHTUI_SSH"):
        target(FLASHTUI_SSH="ssh -o 'unclosed")


# What OpenSSH 9 prints (stderr, exit 255) and what the remote shell/python print.
@pytest.mark.parametrize("code, stderr, line", [
    (255, "ssh: Could not resolve hostname gpu-box: Name or service not known\n",
     "ssh: could not resolve host gpu-box"),
    (255, "ssh: connect to host gpu-box port 22: Connection refused\n",
     "ssh: cannot connect to gpu-box (port 22): connection refused"),
    (255, "@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n...\nHost key verification failed.\n",
     "host key verification failed for gpu-box"),
    (255, "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
          "Host key verification failed.\n", "host key verification failed for gpu-box"),
    (255, "me@gpu-box: Permission denied (publickey,password).\n",
     "permission denied (publickey,password) for gpu-box"),
    (1, "/usr/bin/python3: Error while finding module specification for 'flashtui.worker' "
        "(ModuleNotFoundError: No module named 'flashtui')\n", "flashtui is not installed for python3 on gpu-box"),
    (1, "Traceback (most recent call last):\n  File \"<string>\", line 1\nModuleNotFoundError: No module named 'flashtui'\n",
     "flashtui is not installed for python3 on gpu-box"),
    (127, "env: 'python3': No such file or directory\n",
     "python3 was not found on gpu-box: env: 'python3': No such file or directory"),
    (255, "kex_exchange_identification: read: Connection reset by peer\n",
     "ssh to gpu-box failed: kex_exchange_identification: read: Connection reset by peer"),
])
def test_ssh_failures_are_one_line_each(code, stderr, line):
    assert ssh_failure(target(), code, stderr) == line


@pytest.mark.parametrize("stderr", [
    "worker failed to start: RuntimeError: boom",
    "FileNotFoundError: [Errno 2] No such file or directory: '/x'\nworker failed to start",
    "ModuleNotFoundError: No module named 'flashtui.engine.nope'",  # a broken install, said as is
])
def test_an_unrecognised_failure_is_left_to_the_caller(stderr):
    assert ssh_failure(target(), 3, stderr) is None


def test_version_mismatch_names_both_versions():
    assert version_mismatch(target(), __version__) is None
    assert version_mismatch(target(), "0.0.1") == f"gpu-box runs flashtui 0.0.1, this is {__version__}"
    assert version_mismatch(target(), None) == f"gpu-box runs flashtui unknown, this is {__version__}"


def test_worker_ready_says_who_answered():
    ready = WorkerReady(pid=1, ready_s=0.1, provenance={"flashtui": "0.1.0", "hostname": "gpu-box"}, backends={})
    assert (ready.flashtui_version, ready.hostname) == ("0.1.0", "gpu-box")
    assert WorkerReady(pid=1, ready_s=0.1, provenance={}, backends={}).flashtui_version is None
