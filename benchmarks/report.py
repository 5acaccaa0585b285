"""Shared by the benchmark scripts: each owns one section of docs/benchmarks.md."""
import os
import re

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
