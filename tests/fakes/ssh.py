"""A stand-in for ssh: ``python ssh.py DIR <ssh arguments>`` records its argv in DIR/calls.jsonl and does
what DIR/mode says (ok, hostkey, denied, missing, driver, hang), printing DIR/output when ok."""

import json
import os
import sys
import time
from pathlib import Path

HOST_KEY_CHANGED = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key verification failed.
"""


def main() -> int:
    folder = Path(sys.argv[1])
    with (folder / "calls.jsonl").open("a", encoding="utf-8") as calls:
        calls.write(json.dumps(sys.argv[2:]) + "\n")
    mode_file = folder / "mode"
    mode = mode_file.read_text(encoding="utf-8").strip() if mode_file.exists() else "ok"
    if mode == "hang":
        (folder / "pid").write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)
    if mode == "hostkey":
        sys.stderr.write(HOST_KEY_CHANGED)
        return 255
    if mode == "denied":
        sys.stderr.write("ubuntu@192.0.2.7: Permission denied (publickey).\r\n")
        return 255
    if mode == "missing":
        sys.stderr.write("bash: line 1: nvidia-smi: command not found\n")
        return 127
    if mode == "driver":
        sys.stdout.write("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                         "Make sure that the latest NVIDIA driver is installed and running.\n")
        return 9
    sys.stdout.write((folder / "output").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
