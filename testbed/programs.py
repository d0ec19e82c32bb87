#!/usr/bin/env python3
"""Every external program the demo, the tests and the benchmarks run, and where it comes from.

    testbed/programs.py check             the programs the repository calls (found by reading
                                          its shell scripts, Makefile, Python and Rust) are all
                                          named in testbed/programs.txt; exit 1 naming any that is not
    testbed/programs.py packages          the Debian packages that provide them (setup.sh installs these)
    testbed/programs.py list [SOURCE]     the programs, optionally only those of one source (deb, rust, ...)
    testbed/programs.py found             what the scan finds, with the first place each is called

Why a scan and not a list kept from memory: a script that starts calling a new program would
work on the machine of the developer who wrote it (they have it) and fail on a fresh one.
`make lint` runs `check`, so such a change fails until the program and its package are named.

The scan is a small shell tokenizer (quotes, $(...), heredocs, case patterns, functions), not a
full parser: a word it takes for a program by mistake goes into IGNORED below with a reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "testbed" / "programs.txt"

SHELL_BUILTINS = set(
    """
    alias bg bind break builtin caller cd command compgen complete continue declare dirs disown
    echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local
    logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source
    suspend test times trap true type typeset ulimit umask unalias unset wait . : [ [[ ]] ]
    if then else elif fi case esac for select while until do done in function time coproc { } !
    """.split()
)
# Words that start a command but run the next word as the program.
WRAPPERS = {"exec", "nice", "setsid", "sudo", "command", "time", "builtin", "xargs"}
# Words a regex or the tokenizer takes for a program though none is run (each with why).
IGNORED = {
    "KEEP": "KEEP=1 in a comment-like usage line",
}
# What quoted text, $( ) and $(( )) leave in a word: never part of a program name.
QUOTED = "\x01"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.+-]*$")


@dataclass
class Found:
    """Programs found, each with the first place that calls it."""

    where: dict[str, str] = field(default_factory=dict)

    def add(self, program: str, place: str) -> None:
        if NAME.match(program) and program not in IGNORED:
            self.where.setdefault(program, place)


# --- shell -------------------------------------------------------------------------------


def shell_commands(text: str) -> list[tuple[list[str], int, str]]:
    """Splits shell text into simple commands: (words, line, terminator).

    Quoted text becomes part of a word (its content is not a command), except $( ... )
    inside double quotes, whose commands are returned too. A heredoc's body is skipped.
    """
    commands: list[tuple[list[str], int, str]] = []
    i, n, line = 0, len(text), 1
    words: list[str] = []
    word = ""
    stack: list[str] = ["cmd"]  # "cmd" (top level), "sub" (inside $( )), "dq" (double quotes)
    saved: list[tuple[list[str], str]] = []  # the enclosing command's words while in $( )
    heredocs: list[str] = []
    cmd_line = 1

    def end_word() -> None:
        nonlocal word
        if word:
            words.append(word)
            word = ""

    def end_command(term: str) -> None:
        nonlocal words, cmd_line
        end_word()
        if words:
            commands.append((words, cmd_line, term))
        words = []
        cmd_line = line

    while i < n:
        c = text[i]
        top = stack[-1]
        if top == "dq":
            if c == "\\":
                i += 2
                continue
            if c == '"':
                stack.pop()
            elif text.startswith("$(", i) and not text.startswith("$((", i):
                saved.append((words, word))
                words, word = [], ""
                stack.append("sub")
                i += 2
                continue
            elif c == "\n":
                line += 1
            word += QUOTED
            i += 1
            continue
        # In a command (top level or inside $( )).
        if c == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                line += 1
            else:
                word += text[i + 1]
            i += 2
            continue
        if c == "#" and not word:
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == "'":
            j = text.find("'", i + 1)
            j = n if j < 0 else j
            line += text.count("\n", i, j)
            word += QUOTED
            i = j + 1
            continue
        if c == '"':
            stack.append("dq")
            i += 1
            continue
        if text.startswith("$((", i) or (text.startswith("((", i) and not word) or (c == "(" and word.endswith("=")):
            # Arithmetic, or an array literal `a=(x y)`: no commands inside.
            depth, j = 0, i + (1 if text[i] == "$" else 0)
            while j < n:
                if text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            word += QUOTED
            line += text.count("\n", i, j)
            i = j + 1
            continue
        if text.startswith("$(", i):
            saved.append((words, word))
            words, word = [], ""
            stack.append("sub")
            i += 2
            continue
        if c == ")" and top == "sub":
            end_command(")")
            words, word = saved.pop()
            word += QUOTED
            stack.pop()
            i += 1
            continue
        if text.startswith("<<", i) and not text.startswith("<<<", i):
            m = re.match(r"<<-?\s*(['\"]?)(\w+)\1", text[i:])
            if m:
                heredocs.append(m.group(2))
                i += m.end()
                continue
        if c == "\n":
            end_command("\n")
            line += 1
            i += 1
            if heredocs:
                # Skip each heredoc body up to its delimiter line.
                for delim in heredocs:
                    while i < n:
                        j = text.find("\n", i)
                        j = n if j < 0 else j
                        body_line = text[i:j]
                        i = j + 1
                        line += 1
                        if body_line.strip() == delim:
                            break
                heredocs = []
                cmd_line = line
            continue
        if c in ";|&(){}":
            # `name() {` defines a function; `( … )` and `{ … }` group commands.
            if c == "(" and text.startswith("()", i):
                end_word()
                commands.append((["<function>", *words], line, "()"))
                words = []
                i += 2
                continue
            end_command(c)
            i += 1
            continue
        if c in " \t":
            end_word()
            i += 1
            continue
        word += c
        i += 1
    end_command("")
    return commands


def programs_of(words: list[str]) -> list[str]:
    """The programs a simple command runs: wrappers such as `setsid` or `timeout` and what they run."""
    out = []
    k = 0
    while k < len(words):
        w = words[k]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", w):
            k += 1  # VAR=value
            continue
        if w in ("!", "then", "else", "do", "if", "elif", "while", "until", "time"):
            k += 1
            continue
        if w in ("for", "case", "select", "function", "local", "declare", "export", "readonly"):
            return out
        if w not in SHELL_BUILTINS:
            out.append(w)
        if w == "env":
            k += 1
            while k < len(words) and ("=" in words[k] or words[k].startswith("-")):
                k += 1
            continue
        if w == "timeout":
            k += 1
            while k < len(words) and (words[k].startswith("-") or re.match(r"^[0-9.]+[smhd]?$", words[k])):
                k += 1
            continue
        if w in WRAPPERS:
            if w == "command" and k + 1 < len(words) and words[k + 1].startswith("-"):
                return out  # command -v NAME: a look-up, not a call
            k += 1
            while k < len(words) and words[k].startswith("-"):
                k += 1
            continue
        return out
    return out


def scan_shell(text: str, place: str, found: Found, functions: set[str]) -> None:
    case_depth = 0
    for words, line, term in shell_commands(text):
        if words[0] == "<function>":
            continue
        if words[0] == "case":
            case_depth += 1
        if "esac" in words:
            case_depth = max(0, case_depth - 1)
        if term == ")" and case_depth and len(words) == 1:
            continue  # a case pattern
        if words[-1:] == [";"]:
            continue
        for prog in programs_of(words):
            if prog in SHELL_BUILTINS or prog in functions:
                continue
            if "/" in prog or "$" in prog or not NAME.match(prog):
                continue  # a path (the repository's own scripts, built binaries) or a variable
            found.add(prog, f"{place}:{line}")


def shell_functions(text: str) -> set[str]:
    return {words[1] for words, _, _ in shell_commands(text) if words[0] == "<function>" and len(words) == 2}


def makefile_recipes(text: str) -> str:
    """The recipe lines of a Makefile as shell text, with make's variables replaced."""
    values = {"CARGO": "cargo", "MAKE": "make"}
    out = []
    for raw in text.replace("\\\n", " ").splitlines():
        if raw.startswith("\t"):
            line = raw[1:].lstrip("@-+").replace("$$", "\x02")
            # make's own $(VAR) and $(function ...), innermost first.
            while True:
                new = re.sub(r"\$\(([^()$]*)\)", lambda m: values.get(m.group(1), "MAKEVAR"), line)
                if new == line:
                    break
                line = new
            out.append(line.replace("\x02", "$"))
    return "\n".join(out) + "\n"


# --- Python and Rust ---------------------------------------------------------------------

PY_ARGV = re.compile(r"""(?:[(=,]\s*|^\s*)\[\s*"([A-Za-z][\w.+-]*)"\s*,""", re.M)
PY_SH = re.compile(r"""\bsh\(\s*"([A-Za-z][\w.+-]*)"\s*,""")
RS_PATTERNS = [
    re.compile(r"""Command::new\(\s*"([^"]+)"\s*\)"""),
    # testkit helpers: run(&["ping", ...]), ns.spawn(&["iperf3", ...]), require_tool("tshark")
    re.compile(r"""\b(?:run|spawn|command|output|run_ok|run_in|exec)\(\s*&\[\s*"([^"]+)\""""),
    re.compile(r"""\brequire_tool\(\s*"([^"]+)"\s*\)"""),
]
# `ip netns exec NS PROGRAM`: the program after the namespace runs too.
NETNS_EXEC = re.compile(r""""netns"\s*,\s*"exec"\s*,\s*[^,]+,\s*"([A-Za-z][\w.+-]*)\"""")


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def scan_regexes(text: str, place: str, found: Found, patterns: list[re.Pattern[str]]) -> None:
    for pattern in [*patterns, NETNS_EXEC]:
        for m in pattern.finditer(text):
            found.add(m.group(1), f"{place}:{line_of(text, m.start())}")


# --- the repository ----------------------------------------------------------------------


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"], check=True, capture_output=True, text=True).stdout
    return [ROOT / p for p in out.splitlines()]


def is_shell(path: Path) -> bool:
    if path.suffix == ".sh" or path.name == "run" and path.parent.name == ".ci":
        return True
    try:
        with path.open("rb") as f:
            head = f.readline()
    except OSError:
        return False
    return head.startswith(b"#!") and (b"bash" in head or b"/sh" in head)


def scan(files: list[Path]) -> Found:
    found = Found()
    shells = [p for p in files if p.is_file() and is_shell(p)]
    functions: set[str] = set()
    for p in shells:
        functions |= shell_functions(p.read_text())
    for p in files:
        if not p.is_file():
            continue
        rel = os.path.relpath(p, ROOT)
        if rel.startswith("target/") or rel.startswith("testbed/programs"):
            continue  # (the scanner and its tests name made-up programs on purpose)
        if p in shells:
            scan_shell(p.read_text(), rel, found, functions)
        elif p.name == "Makefile":
            scan_shell(makefile_recipes(p.read_text()), rel + " (recipe)", found, functions)
        elif p.suffix == ".py":
            scan_regexes(p.read_text(), rel, found, [PY_ARGV, PY_SH])
        elif p.suffix == ".rs":
            scan_regexes(p.read_text(), rel, found, RS_PATTERNS)
    return found


@dataclass
class Entry:
    program: str
    source: str  # deb:PACKAGE, rust, cargo:CRATE, built:WHAT, image
    why: str


def read_list(path: Path = LIST) -> list[Entry]:
    entries = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)
        body, why = text[0].split(), (text[1].strip() if len(text) > 1 else "")
        if not body:
            continue
        if len(body) != 2:
            sys.exit(f"{path}:{n}: expected 'PROGRAM SOURCE  # why', got {raw!r}")
        entries.append(Entry(body[0], body[1], why))
    return entries


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "check"
    entries = read_list()
    if cmd == "packages":
        print(" ".join(sorted({e.source[4:] for e in entries if e.source.startswith("deb:")})))
        return 0
    if cmd == "list":
        want = argv[2] if len(argv) > 2 else None
        for e in entries:
            if want is None or e.source.split(":", 1)[0] == want:
                print(e.program, e.source)
        return 0
    found = scan(tracked_files())
    if cmd == "found":
        for prog, place in sorted(found.where.items()):
            print(f"{prog:24} {place}")
        return 0
    if cmd != "check":
        print(__doc__, file=sys.stderr)
        return 2
    listed = {e.program for e in entries}
    missing = sorted(set(found.where) - listed)
    for prog in missing:
        print(
            f"programs: {prog} is called ({found.where[prog]}) but testbed/programs.txt does not name it:"
            f" add '{prog} deb:PACKAGE' (dpkg -S $(command -v {prog}) tells the package) so setup installs it",
            file=sys.stderr,
        )
    unexplained = [e.program for e in entries if e.program not in found.where and not e.why]
    for prog in unexplained:
        print(f"programs: {prog} is listed but no call was found: remove it, or say after '#' who calls it", file=sys.stderr)
    if missing or unexplained:
        return 1
    print(f"programs: the {len(found.where)} programs the repository calls are all in testbed/programs.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
