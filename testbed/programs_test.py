#!/usr/bin/env python3
"""Tests of programs.py's scanner: what it must find, and what it must not take for a program.

    python3 testbed/programs_test.py      (make lint runs it)
"""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import programs  # noqa: E402


def shell(text: str) -> set[str]:
    found = programs.Found()
    functions = programs.shell_functions(text)
    programs.scan_shell(text, "t.sh", found, functions)
    return set(found.where)


def regexes(text: str, patterns) -> set[str]:
    found = programs.Found()
    programs.scan_regexes(text, "t", found, patterns)
    return set(found.where)


class Shell(unittest.TestCase):
    def test_a_new_program_is_found_wherever_it_is_called(self):
        self.assertEqual(shell("frob -x\n"), {"frob"})
        self.assertEqual(shell("a | frob\n"), {"a", "frob"})
        self.assertEqual(shell("x=\"$(frob --y)\"\n"), {"frob"})
        self.assertEqual(shell("if ! frob; then :; fi\n"), {"frob"})
        self.assertEqual(shell("VAR=1 frob\n"), {"frob"})
        self.assertEqual(shell("timeout 5 frob\n"), {"timeout", "frob"})
        self.assertEqual(shell("setsid frob >log 2>&1 &\n"), {"setsid", "frob"})
        self.assertEqual(shell("env A=b frob\n"), {"env", "frob"})
        self.assertEqual(shell("for x in a b; do frob \"$x\"; done\n"), {"frob"})
        self.assertEqual(shell("y=$( (frob) 2>/dev/null)\n"), {"frob"})

    def test_words_that_are_not_programs_are_not_taken_for_programs(self):
        self.assertEqual(shell("echo 'frob is not run'\n"), set())
        self.assertEqual(shell("# frob in a comment\n"), set())
        self.assertEqual(shell("cat <<EOF\nfrob in a heredoc\nEOF\n"), {"cat"})
        self.assertEqual(shell("case \"$1\" in\nup) start ;;\n*) stop ;;\nesac\n"), {"start", "stop"})
        self.assertEqual(shell("helper() { frob; }\nhelper\n"), {"frob"})
        self.assertEqual(shell("packages=(frob other)\n"), set())
        self.assertEqual(shell("command -v frob >/dev/null\n"), set())
        self.assertEqual(shell("\"$tool\" --version\n/usr/bin/frob\n"), set())
        self.assertEqual(shell("echo $((1 + 2))\n"), set())
        self.assertEqual(shell("awk '{\n  frob\n}' file\n"), {"awk"})

    def test_makefile_recipes_become_shell_with_make_variables_expanded(self):
        text = "t:\n\t$(CARGO) build $(if $(filter a,$(P)),--x)\n\tfrob $$(date)\nx = frob2\n"
        self.assertEqual(shell(programs.makefile_recipes(text)), {"cargo", "frob", "date"})


class PythonAndRust(unittest.TestCase):
    def test_argv_lists_and_netns_exec(self):
        text = 'subprocess.run(["frob", "-a"])\nargv = ["ip", "netns", "exec", NS, "iperf3", "-s"]\nx = d["key"]\n'
        self.assertEqual(regexes(text, [programs.PY_ARGV, programs.PY_SH]), {"frob", "ip", "iperf3"})

    def test_rust_calls(self):
        text = 'Command::new("frob");\nns.run(&["ping", "-c1"]);\nrequire_tool("tshark")?;\nlet s = "nope";\n'
        self.assertEqual(regexes(text, programs.RS_PATTERNS), {"frob", "ping", "tshark"})


class TheList(unittest.TestCase):
    def test_every_program_the_repository_calls_is_listed(self):
        listed = {e.program for e in programs.read_list()}
        found = programs.scan(programs.tracked_files())
        self.assertEqual(sorted(set(found.where) - listed), [])


if __name__ == "__main__":
    unittest.main()
