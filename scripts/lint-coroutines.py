#!/usr/bin/env python3
"""Flags two coroutine patterns GCC 12 miscompiles.

1. A co_await in an operand of &&, || or ?: . When the short-circuit skips it, GCC 12 still
   resumes through the skipped await (reproduced: a saga driver segfaulted in
   awaitable_frame_base::await_transform). Await into a named variable first:

    const bool stored = co_await settle(f);      // fine
    if (f && !co_await settle(f)) ...            // flagged

2. Lambdas with by-value captures written inside a co_await operand.

GCC 12 destroys such a lambda temporary twice (reproduced: a std::shared_ptr capture's
use count goes negative, an std::string capture is freed twice). Name the lambda first
and move it in, or capture by reference (the values then live in the coroutine frame):

    auto job = [password = in.password] { return hash(password); };
    auto h = co_await pool.run(std::move(job));        // fine
    auto h = co_await pool.run([&in] { return hash(in.password); });   // fine

A capture of trivially destructible values (ints, raw pointers) is harmless; mark such a
line with `// coro-capture-ok` to silence this check.
Exit status 1 when something is found. Usage: lint-coroutines.py [paths...]
"""
import os
import re
import sys

ROOTS = sys.argv[1:] or ["libs", "services", "samples", "tools", "bench"]
SHORT_CIRCUIT_AWAIT = re.compile(r"(&&|\|\||\?)\s*!?\s*\(?\s*co_await\b")
CAPTURE = re.compile(r"\[([^\[\]]*)\]\s*(?:\([^()]*\))?\s*(?:mutable\s*)?(?:->[^{]*)?\{")


def dangerous(captures: str) -> bool:
    for item in (c.strip() for c in captures.split(",")):
        if not item or item == "&" or item.startswith("&") or item == "this":
            continue
        return True  # a by-value capture (including "=", "*this", "x", "x = expr")
    return False


def statement_after(lines, index, first: str, max_lines: int = 40) -> str:
    """The text from `first` (the rest of line `index`) up to the `;` that ends the
    statement, which may span lines. Block bodies ({...}: a lambda's) are left out: a lambda
    written inside another lambda's body is made when that body runs, not in this operand."""
    text = ""
    depth = 0   # ( and [ nesting
    braces = 0  # { nesting: inside a body, nothing is kept
    for line in [first] + lines[index + 1:index + max_lines]:
        code = line.split("//", 1)[0]
        for ch in code:
            if braces > 0:
                if ch == "{":
                    braces += 1
                elif ch == "}":
                    braces -= 1
                    if braces == 0:
                        text += "}"
                continue
            if ch == "{":
                braces = 1
                text += "{"
                continue
            text += ch
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif ch == ";" and depth <= 0:
                return text
        text += "\n"
    return text


def main() -> int:
    found = 0
    for root in ROOTS:
        for dirpath, _, files in os.walk(root):
            for name in files:
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    lines = f.readlines()
                for index, line in enumerate(lines):
                    number = index + 1
                    if "co_await" not in line or line.lstrip().startswith("//"):
                        continue
                    if SHORT_CIRCUIT_AWAIT.search(line):
                        print(f"{path}:{number}: co_await inside &&, || or ?: "
                              f"(GCC 12 miscompiles a skipped await): {line.strip()}")
                        found += 1
                    if "coro-capture-ok" in line:
                        continue
                    # The operand runs to the end of the statement, which may span lines
                    # (co_await asio::co_spawn(ex,\n [state]() ... ,\n use_awaitable);).
                    operand = statement_after(lines, index, line.split("co_await", 1)[1])
                    for m in CAPTURE.finditer(operand):
                        if dangerous(m.group(1)):
                            print(f"{path}:{number}: lambda with by-value captures in a co_await operand "
                                  f"(GCC 12 destroys it twice): {line.strip()}")
                            found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
