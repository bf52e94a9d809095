#!/usr/bin/env python3
"""Judge a Tempest run against the list of tests that were supposed to run.

Run with the venv's python (needs python-subunit + testtools):

  tempest_results.py --name identity --listed listed.txt --subunit run.subunit
      [--include-list conformance/tempest/identity.txt] [--strict]
      [--passing-out FILE] [--report FILE]

--listed      test ids, one a line, as printed by `tempest run --list-tests`
              (what the selection expanded to; other lines are ignored)
--subunit     `stestr last --subunit` of the run (may be missing/empty)
--include-list  the include list used; every non-comment line must match at
              least one listed test (a stale line is an error in --strict)
--strict      exit 1 unless every listed test passed (a skip counts as a
              failure: include lists hold only tests that must pass)
--passing-out write the passing tests in include-list format (one anchored
              regex a line), e.g. for growing conformance/tempest/*.txt
--report      write the per-test details (status, reason) to this file
--counts-out  write "passed failed skipped listed problems" (for scripts)

Prints the failures with a one-line reason, then
  <name>: L listed, R ran
  <name>: N passed, M failed, K skipped
where M counts failed, errored and listed-but-not-run tests.
"""

import argparse
import os
import re
import sys

PASS = {"success", "xfail"}
SKIP = {"skip"}

TEST_ID = re.compile(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*(\[.*\]|\(.*\))*$")
SETUP_RE = re.compile(r"^(setUpClass|tearDownClass) \((?P<cls>[\w.]+)\)$")


def base_id(test_id):
    """tempest.x.Class.test_y[id-...,smoke] -> tempest.x.Class.test_y"""
    return test_id.split("[", 1)[0]


def list_line(test_id):
    """Include-list line matching exactly this test (attributes excluded)."""
    return "^" + re.escape(base_id(test_id)) + r"\b"


def read_listed(path):
    ids = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if TEST_ID.match(line):
                ids.append(line)
    return ids


def read_include_list(path):
    """Same parsing as stestr: text before the first '#' is the regex."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            rx = line.strip().split("#")[0].strip()
            if rx:
                out.append((n, rx))
    return out


def read_subunit(path):
    results = []
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return results
    import subunit
    import testtools

    with open(path, "rb") as f:
        case = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(results.append)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return results


def reason_of(test):
    details = test.get("details") or {}
    for key in ("reason", "traceback"):
        if key in details:
            try:
                text = details[key].as_text()
            except Exception:  # noqa: BLE001 - best effort
                continue
            lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
            if lines:
                return lines[-1][:300]
    return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--listed", required=True)
    p.add_argument("--subunit")
    p.add_argument("--include-list")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--passing-out")
    p.add_argument("--report")
    p.add_argument("--counts-out",
                   help="write 'passed failed skipped listed problems' here")
    args = p.parse_args()

    listed = read_listed(args.listed)
    listed_set = set(listed)
    problems = []

    if args.include_list:
        for n, rx in read_include_list(args.include_list):
            try:
                c = re.compile(rx)
            except re.error as e:
                problems.append("%s:%d: invalid regex %r (%s)"
                                % (args.include_list, n, rx, e))
                continue
            if not any(c.search(t) for t in listed):
                problems.append("%s:%d: matches no test: %s"
                                % (args.include_list, n, rx))

    by_id = {}
    class_errors = {}  # class -> (fixture, reason)
    for t in read_subunit(args.subunit):
        m = SETUP_RE.match(t["id"])
        if m:
            if t["status"] not in PASS:
                class_errors.setdefault(m.group("cls"),
                                        (m.group(1), t["status"], reason_of(t)))
            continue
        by_id[t["id"]] = t

    passed, failed, skipped = [], [], []
    rows = []
    for tid in listed:
        t = by_id.get(tid)
        if t is None:
            cls = base_id(tid).rsplit(".", 1)[0]
            if cls in class_errors and class_errors[cls][1] in SKIP:
                # skip_checks / skipException raised in setUpClass
                status, why = "skip", class_errors[cls][2]
                skipped.append(tid)
            elif cls in class_errors:
                fixture, _, why = class_errors[cls]
                status, why = "fail", "%s failed: %s" % (fixture, why)
                failed.append(tid)
            else:
                status, why = "notrun", "listed but not run"
                failed.append(tid)
        elif t["status"] in PASS:
            status, why = "pass", ""
            passed.append(tid)
        elif t["status"] in SKIP:
            status, why = "skip", reason_of(t)
            skipped.append(tid)
        else:
            status, why = t["status"], reason_of(t)
            failed.append(tid)
        rows.append((status, base_id(tid), why))

    # tests that ran but were not listed (should not happen) are ignored;
    # class fixtures whose class had no listed test are reported.
    listed_classes = {base_id(t).rsplit(".", 1)[0] for t in listed}
    for cls, (fixture, status, why) in sorted(class_errors.items()):
        if cls not in listed_classes and status not in SKIP:
            problems.append("%s (%s) %s: %s" % (fixture, cls, status, why))

    order = {"fail": 0, "notrun": 1, "skip": 2}
    bad = sorted((r for r in rows if r[0] != "pass"),
                 key=lambda r: (order.get(r[0], 0), r[1]))
    if bad:
        print("%s: tests that did not pass:" % args.name)
        for status, tid, why in bad:
            print("  %-6s %s%s" % (status.upper(), tid, (": " + why) if why else ""))
    for prob in problems:
        print("%s: %s" % (args.name, prob))

    if args.report:
        with open(args.report, "w") as f:
            for status, tid, why in rows:
                f.write("%s\t%s\t%s\n" % (status, tid, why))
    if args.passing_out:
        with open(args.passing_out, "w") as f:
            for tid in sorted(passed, key=base_id):
                f.write(list_line(tid) + "\n")

    ran = sum(1 for t in listed if t in by_id)
    print("%s: %d listed, %d ran" % (args.name, len(listed), ran))
    print("%s: %d passed, %d failed, %d skipped"
          % (args.name, len(passed), len(failed), len(skipped)))

    if args.counts_out:
        with open(args.counts_out, "w") as f:
            f.write("%d %d %d %d %d\n" % (len(passed), len(failed), len(skipped),
                                          len(listed), len(problems)))

    if args.strict and (failed or skipped or problems):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
