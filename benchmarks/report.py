"""Shared by the benchmark scripts: each owns one section of docs/benchmarks.md."""
import os
import re

# PyTorch's OpenMP threads busy-wait after each parallel region by default; in an interleaved benchmark
# they kept both cores spinning into the next (TensorFlow) variant: tfp_dgbn Flipout measured 1,248
# examples/s right after the torch variants vs 1,707 without torch. Passive waiting removes that.
# Set before torch is imported (the scripts import it lazily), as the OpenMP runtime reads it on load.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "benchmarks.md")
HEADER = ("# Benchmarks\n\nEach section is written by the script it names; ratios are measured side by side "
          "in one run.\n")


def write_section(key, text, path=DEFAULT):
    """Replace (or append) the section ``key`` of the results file with ``text``; print it too."""
    print(text)
    old = open(path).read() if os.path.exists(path) else HEADER
    block = f"<!-- {key} -->\n{text.strip()}\n<!-- /{key} -->"
    pattern = re.compile(rf"<!-- {re.escape(key)} -->.*?<!-- /{re.escape(key)} -->", re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(new if new.endswith("\n") else new + "\n")


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak_rss():
    """Reset this process's peak resident memory to the current one (Linux); returns it in MiB.

    Writing 5 to /proc/self/clear_refs resets VmHWM, so the peak after a step
    is that step's own peak, not the process's whole history.
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mib("VmRSS")


def peak_rss_mib():
    """Peak resident memory (MiB) since the last `reset_peak_rss`."""
    return _status_mib("VmHWM")
