#!/usr/bin/env python3
"""Turn one benchmark run (bench/run.sh) into the results table.

Reads RUN/machine.txt, RUN/raw.txt (one "TAG key=value ..." line per
measurement) and RUN/hyperfine.json; prints the table, writes
OUT/latest.md, OUT/scaling.dat and (with gnuplot) OUT/scaling.png.
Every row is a ratio of two figures measured in the same run.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys


def parse_kv(text):
    """Parse 'key=value key=value' into a dict (values stay strings)."""
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def load_raw(path):
    """Read raw.txt into {tag: {key: value}}."""
    raw = {}
    if not os.path.exists(path):
        return raw
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            tag, _, rest = line.partition(" ")
            raw[tag] = parse_kv(rest)
    return raw


def num(d, key):
    """A float field of a measurement, or None."""
    try:
        return float(d[key])
    except (KeyError, TypeError, ValueError):
        return None


def median_of(raw, prefix, key):
    """Median of one field over every round whose tag starts with prefix."""
    vals = [num(v, key) for t, v in raw.items() if t.startswith(prefix)]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def rounds_of(raw, prefix):
    """The measurements whose tag starts with prefix, in tag order."""
    return [raw[t] for t in sorted(raw) if t.startswith(prefix)]


class Table:
    """The rows of the report."""

    def __init__(self):
        self.rows = []

    def add(self, rid, what, server, ours, ref, ratio, target=None,
            higher_better=False, note="", result=None):
        """Add a row; target is the ratio bound (None: informational)."""
        if result is not None:
            pass
        elif ratio is None:
            result = "n/a"
        elif target is None:
            result = "info"
        elif higher_better:
            result = "met" if ratio >= target else "MISSED"
        else:
            result = "met" if ratio <= target else "MISSED"
        tgt = "-" if target is None else ("≥ " if higher_better else "≤ ") + f"{target:g}×"
        if isinstance(result, tuple):
            tgt, result = result
        self.rows.append([rid, what, server, ours, ref,
                          "-" if ratio is None else f"{ratio:.2f}×", tgt, result, note])

    def na(self, rid, what, server, why):
        """Add a row that could not be measured."""
        self.rows.append([rid, what, server, f"not available: {why}", "-", "-", "-", "n/a", ""])


def ms(v):
    """Format milliseconds."""
    return "?" if v is None else (f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms")


def kb(v):
    """Format kilobytes."""
    if v is None:
        return "?"
    return f"{v / 1024:.1f} MiB" if v >= 1024 else f"{v:.0f} KiB"


def ratio(a, b):
    """a / b, or None."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def rows_inproc(t, raw):
    """Rows 1 and 2: floor and engine in-process against Postfix."""
    srv = "Postfix 587 (RSA-2048, TLS 1.3)"
    if not rounds_of(raw, "inproc.floor"):
        t.na("1-2", "floor and engine in-process", srv, why_na(raw, "inproc.na"))
        return
    fw = median_of(raw, "inproc.floor", "wall_per_probe_ms")
    fc = median_of(raw, "inproc.floor", "cpu_per_probe_ms")
    t.add("1", "Floor: minimal STARTTLS probe, sequential — wall per probe", srv,
          ms(fw), ms(fw), 1.0, None, note="reference")
    t.add("1", "Floor — client CPU (user+sys) per probe", srv, ms(fc), ms(fc), 1.0,
          None, note="reference")
    for tag, label in (("inproc.engine1", "sequential"),
                       ("inproc.engineN", "%s in flight" % raw_inflight(raw))):
        w = median_of(raw, tag, "wall_per_probe_ms")
        c = median_of(raw, tag, "cpu_per_probe_ms")
        fails = sum(int(num(v, "failed") or 0) for v in rounds_of(raw, tag))
        note = f"{fails} failed" if fails else ""
        t.add("2", f"Engine in-process, {label} — wall per probe vs floor", srv,
              ms(w), ms(fw), ratio(w, fw), 1.2, note=note)
        t.add("2", f"Engine in-process, {label} — CPU per probe vs floor", srv,
              ms(c), ms(fc), ratio(c, fc), 1.2, note=note)


def raw_inflight(raw):
    """The in-flight count of row 2's concurrent engine runs."""
    r = rounds_of(raw, "inproc.engineN")
    return r[0].get("inflight", "N") if r else "N"


HYPERFINE_LINES = []  # per-round hyperfine means, for the raw section


def why_na(raw, tag):
    """Why a section has no figures: its recorded reason, or not run."""
    if tag in raw:
        return raw[tag].get("why", "?").replace("_", " ")
    return "section not run"


def round_of(path):
    """The round number of a hyperfine-N.json file."""
    return int(re.sub(r"\D", "", os.path.basename(path)) or 0)


def rows_process(t, raw, run):
    """Row 3: check_smtp_ports vs check_smtp / check_ssmtp (hyperfine)."""
    srv = "Postfix (RSA-2048, TLS 1.3)"
    paths = sorted(glob.glob(os.path.join(run, "hyperfine-*.json")), key=round_of)
    if not paths or "process.na" in raw:
        t.na("3", "check_smtp_ports vs check_smtp", srv, why_na(raw, "process.na"))
        return
    # Each command's mean wall and user+sys per round.
    acc = {}
    for p in paths:
        with open(p) as f:
            for r in json.load(f)["results"]:
                acc.setdefault(r["command"], []).append(r)
                HYPERFINE_LINES.append(
                    f"hyperfine.{round_of(p)}.{r['command']} "
                    f"mean_ms={r['mean'] * 1e3:.3f} stddev_ms={r['stddev'] * 1e3:.3f} "
                    f"user_ms={r['user'] * 1e3:.3f} system_ms={r['system'] * 1e3:.3f} "
                    f"runs={len(r.get('times', []))}")
    # each command's median over the rounds (a round hit by a load spike
    # from elsewhere does not move it)
    res = {c: {"mean": statistics.median(r["mean"] for r in rs),
               "cpu": statistics.median(r["user"] + r["system"] for r in rs)}
           for c, rs in acc.items()}

    def wall(name):
        return res[name]["mean"] * 1e3 if name in res else None

    def cpu(name):
        return res[name]["cpu"] * 1e3 if name in res else None

    for port, ref, refname in (("587", "ref_587", "check_smtp -S"),
                               ("465", "ref_465", "check_ssmtp")):
        ours = f"ours_{port}"
        t.add("3", f"check_smtp_ports -p {port} vs {refname} — wall per run",
              f"Postfix {port}", ms(wall(ours)), ms(wall(ref)),
              ratio(wall(ours), wall(ref)), 1.0)
        t.add("3", f"check_smtp_ports -p {port} vs {refname} — user+sys per run",
              f"Postfix {port}", ms(cpu(ours)), ms(cpu(ref)),
              ratio(cpu(ours), cpu(ref)), 1.0)
    singles = ["ours_25", "ours_465", "ours_587", "ours_2525"]
    if all(s in res for s in singles) and "ours_4ports" in res:
        slow = max(singles, key=wall)
        four = wall("ours_4ports")
        t.add("3", f"4 ports in one run vs slowest single port ({slow[5:]})",
              srv, ms(four), ms(wall(slow)), ratio(four, wall(slow)), 1.3)
        seq = sum(wall(s) for s in singles)
        t.add("3", "4 ports in one run vs 4 sequential single-port runs — wall",
              srv, ms(four), ms(seq), ratio(four, seq), None)
        seqc = sum(cpu(s) for s in singles)
        t.add("3", "4 ports in one run vs 4 sequential single-port runs — user+sys",
              srv, ms(cpu("ours_4ports")), ms(seqc), ratio(cpu("ours_4ports"), seqc), None)
    # The server's CPU for the same runs: in the 4-port run, Postfix's four
    # handshakes share the machine's cores with the client.
    pf = {}
    for name in ("ours_587", "ours_4ports"):
        m = raw.get(f"pf_cpu.{name}")
        ticks, tck, runs = num(m, "ticks"), num(m, "clk_tck"), num(m, "runs")
        if ticks is not None and tck and runs:
            pf[name] = ticks / tck * 1e3 / runs
    if len(pf) == 2:
        t.add("3", "Postfix CPU per run (master and all its processes): 4 ports vs 587 alone",
              srv, ms(pf["ours_4ports"]), ms(pf["ours_587"]),
              ratio(pf["ours_4ports"], pf["ours_587"]), None,
              note="the server's work competes with the client's for the same cores")


def cpu_per_req_ms(m):
    """Exporter CPU per request in ms from a load measurement."""
    ticks, tck, ok = num(m, "cpu_ticks"), num(m, "clk_tck"), num(m, "ok")
    if ticks is None or not tck or not ok:
        return None
    return ticks / tck * 1e3 / ok


def rows_exporter(t, raw):
    """Row 4: smtp_exporter vs blackbox_exporter."""
    if "exporter.na" in raw:
        t.na("4", "smtp_exporter vs blackbox_exporter", "-",
             raw["exporter.na"].get("why", "?").replace("_", " "))
        return
    if not rounds_of(raw, "exp."):
        t.na("4", "smtp_exporter vs blackbox_exporter", "-", "section not run")
        return
    srv = "Postfix 587 (RSA-2048, TLS 1.3)"
    ours_r, bb_r = rounds_of(raw, "exp.pf.ours"), rounds_of(raw, "exp.pf.bb")
    if not ours_r or not bb_r:
        t.na("4", "smtp_exporter vs blackbox_exporter, sequential", srv,
             why_na(raw, "exp.pf.na"))
    fails = sum(int(num(m, "failed") or 0) for m in ours_r + bb_r)
    w_o = statistics.median([num(m, "mean_ms") for m in ours_r]) if ours_r else None
    w_b = statistics.median([num(m, "mean_ms") for m in bb_r]) if bb_r else None
    c_o = statistics.median([cpu_per_req_ms(m) for m in ours_r]) if ours_r else None
    c_b = statistics.median([cpu_per_req_ms(m) for m in bb_r]) if bb_r else None
    note = f"{fails} failed requests" if fails else ""
    if ours_r and bb_r:
        t.add("4", "smtp_exporter vs blackbox_exporter — wall per probe (HTTP request)",
              srv, ms(w_o), ms(w_b), ratio(w_o, w_b), 0.1, note=note)
        t.add("4", "smtp_exporter vs blackbox_exporter — exporter CPU per probe",
              srv, ms(c_o), ms(c_b), ratio(c_o, c_b), 0.2, note=note)
    lean = "lean fault server (ECDSA P-256)"
    for c in ("1", "16", "64"):
        o, b = raw.get(f"exp.lean.c{c}.ours"), raw.get(f"exp.lean.c{c}.bb")
        if not o or not b:
            continue
        fails = int(num(o, "failed") or 0) + int(num(b, "failed") or 0)
        note = f"{fails} failed requests: {o.get('first_error')} / {b.get('first_error')}" if fails else ""
        co, cb = cpu_per_req_ms(o), cpu_per_req_ms(b)
        t.add("4", f"{c} concurrent — exporter CPU per probe", lean, ms(co), ms(cb),
              ratio(co, cb), 0.2, note=note)
        # Throughput counts successful probes only.
        ro = (num(o, "ok") or 0) / (num(o, "wall_s") or 1)
        rb = (num(b, "ok") or 0) / (num(b, "wall_s") or 1)
        t.add("4", f"{c} concurrent — throughput (successful probes/s, higher is better)",
              lean, f"{ro:.0f}/s", f"{rb:.0f}/s", ratio(ro, rb), None, note=note)
    idle, load = raw.get("exp.idle_rss"), raw.get("exp.load_rss")
    if idle:
        t.add("4", "RSS idle", "-", kb(num(idle, "ours_kb")), kb(num(idle, "bb_kb")),
              ratio(num(idle, "ours_kb"), num(idle, "bb_kb")), 0.5,
              note="'well below' read as ≤ 0.5×")
    if idle and num(idle, "ours_anon_kb"):
        t.add("4", "RSS idle, anonymous only (heap, stacks; no shared libraries)", "-",
              kb(num(idle, "ours_anon_kb")), kb(num(idle, "bb_anon_kb")),
              ratio(num(idle, "ours_anon_kb"), num(idle, "bb_anon_kb")), 0.5)
    if load:
        t.add("4", "RSS under load (peak, up to 64 concurrent)", lean,
              kb(num(load, "ours_hwm_kb")), kb(num(load, "bb_hwm_kb")),
              ratio(num(load, "ours_hwm_kb"), num(load, "bb_hwm_kb")), 0.5,
              note="'well below' read as ≤ 0.5×")
    o64, b64 = raw.get("exp.lean.c64.ours"), raw.get("exp.lean.c64.bb")
    if o64 and b64 and num(o64, "anon_kb"):
        t.add("4", "RSS anonymous right after 64 concurrent", lean,
              kb(num(o64, "anon_kb")), kb(num(b64, "anon_kb")),
              ratio(num(o64, "anon_kb"), num(b64, "anon_kb")), 0.5)
    # smtp_exporter's CPU per probe against the floor's: both sequential
    # against the same server, in alternating rounds of this run (median).
    for key, label in (("pf", srv), ("lean", lean)):
        fl = rounds_of(raw, f"expfloor.{key}.floor")
        ou = rounds_of(raw, f"expfloor.{key}.ours")
        if not fl or not ou:
            continue
        cf = statistics.median([num(m, "cpu_per_probe_ms") for m in fl])
        co = statistics.median([cpu_per_req_ms(m) for m in ou])
        fails = sum(int(num(m, "failed") or 0) for m in fl + ou)
        note = f"{len(ou)} rounds of {ou[0].get('requests')} probes each side"
        if fails:
            note += f"; {fails} failed"
        t.add("4", "smtp_exporter CPU per probe vs floor (sequential, same server)",
              label, ms(co), ms(cf), ratio(co, cf), 1.2, note=note)
    # The physical bound of the CPU ratio: no exporter can spend less client
    # CPU per probe than the floor does.
    floors = [raw[k] for k in ("scale.floor", "scale.floor2") if k in raw]
    b1 = raw.get("exp.lean.c1.bb")
    if floors and b1:
        fc = statistics.mean(num(m, "cpu_per_probe_ms") for m in floors)
        t.add("4", "bound: floor CPU per probe ÷ blackbox CPU per probe (1 concurrent)",
              lean, ms(fc), ms(cpu_per_req_ms(b1)), ratio(fc, cpu_per_req_ms(b1)), None,
              note="the lowest CPU ratio any exporter could reach")
    inproc_f = median_of(raw, "inproc.floor", "cpu_per_probe_ms")
    if inproc_f and ours_r and bb_r:
        t.add("4", "bound: floor CPU per probe ÷ blackbox CPU per probe", srv,
              ms(inproc_f), ms(c_b), ratio(inproc_f, c_b), None,
              note="the lowest CPU ratio any exporter could reach")
        fw = median_of(raw, "inproc.floor", "wall_per_probe_ms")
        t.add("4", "bound: floor wall per probe ÷ blackbox wall per probe", srv,
              ms(fw), ms(w_b), ratio(fw, w_b), None,
              note="the lowest wall ratio any exporter could reach")


def rss_per(m):
    """RSS added per in-flight probe (KiB) of a run."""
    base, peak, n = num(m, "rss_base_kb"), num(m, "rss_peak_kb"), num(m, "inflight")
    if base is None or peak is None or not n:
        return None
    return (peak - base) / n


def idle_count(raw):
    """How many idle probes the scale.idleN run kept in flight."""
    m = raw.get("scale.idleN") or {}
    return m.get("idle", "the")


def rows_scaling(t, raw, out):
    """Row 5: scaling in one event loop against the lean server."""
    srv = "lean fault server (ECDSA P-256)"
    floors = [raw[k] for k in ("scale.floor", "scale.floor2") if k in raw]
    if not floors:
        t.na("5", "scaling", srv, "section not run")
        return None
    fc = statistics.mean(num(m, "cpu_per_probe_ms") for m in floors)
    fw = statistics.mean(num(m, "wall_per_probe_ms") for m in floors)
    drift = ""
    if len(floors) == 2:
        a, b = (num(m, "cpu_per_probe_ms") for m in floors)
        drift = f"floor before/after: {a:.3f} / {b:.3f} ms"
    t.add("5", "Floor, sequential — client CPU per probe", srv, ms(fc), ms(fc), 1.0,
          None, note="reference; " + drift)
    hold = raw.get("scale.hold")
    hold_kb = rss_per(hold) if hold else None
    if hold:
        t.add("5", f"Floor holding {hold.get('inflight')} open TLS connections — RSS per connection",
              srv, kb(hold_kb), kb(hold_kb), 1.0, None, note="reference")
    levels = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in raw.items()
                    if k.startswith("scale.engine."))
    total = failed = 0
    dat = []
    for n, m in levels:
        c, w = num(m, "cpu_per_probe_ms"), num(m, "wall_per_probe_ms")
        total += int(num(m, "probes") or 0)
        failed += int(num(m, "failed") or 0)
        note = f"{m.get('failed')} failed: {m.get('first_error')}" if num(m, "failed") else ""
        t.add("5", f"Engine, {m.get('probes')} probes, {n} in flight — CPU per probe vs floor",
              srv, ms(c), ms(fc), ratio(c, fc), 1.2, note=note)
        t.add("5", f"Engine, {n} in flight — wall per probe (1/throughput) vs floor",
              srv, ms(w), ms(fw), ratio(w, fw), None)
        r = rss_per(m)
        if n >= 100:
            t.add("5", f"Engine, {n} in flight — RSS per in-flight probe vs floor per connection",
                  srv, kb(r), kb(hold_kb), ratio(r, hold_kb), 1.5)
        dat.append((n, c, fc, r, hold_kb, w))
    if levels:
        t.add("5", "Probes that failed (all in-flight levels)", srv,
              f"{failed} of {total}", "0", None, None,
              result=("0 failed", "met" if failed == 0 else "MISSED"))
    i0, iN = raw.get("scale.idle0"), raw.get("scale.idleN")
    if i0 and iN:
        c0, cN = num(i0, "cpu_per_probe_ms"), num(iN, "cpu_per_probe_ms")
        bad = [f"{m.get('failed')} failed: {m.get('first_error')}"
               for m in (i0, iN) if num(m, "failed")]
        t.add("5", f"Engine, 1 in flight beside {idle_count(raw)} idle probes — CPU per "
              "probe vs alone (loop work follows what is ready)",
              srv, ms(cN), ms(c0), ratio(cN, c0), 1.2,
              note="; ".join(bad) or "both in the engine's thread")
    with open(os.path.join(out, "scaling.dat"), "w") as f:
        f.write("# inflight engine_cpu_ms floor_cpu_ms engine_rss_kb_per_probe "
                "floor_rss_kb_per_conn engine_wall_ms\n")
        for row in dat:
            f.write(" ".join("nan" if v is None else f"{v:.4f}" for v in row) + "\n")
    return os.path.join(out, "scaling.dat")


def rows_collectd(t, raw):
    """Row 6: collectd CPU per read, our plugin vs exec + check_smtp."""
    srv = "Postfix 25/465/587/2525"
    if "collectd.na" in raw:
        t.na("6", "collectd CPU per read", srv,
             raw["collectd.na"].get("why", "?").replace("_", " "))
        return
    o, e = raw.get("collectd.ours"), raw.get("collectd.exec")
    if not o or not e:
        t.na("6", "collectd CPU per read", srv, "section not run")
        return

    def per_read(m):
        rows, ticks, tck = num(m, "rows"), num(m, "cpu_ticks"), num(m, "clk_tck")
        if not rows or ticks is None or not tck:
            return None
        return ticks / tck * 1e3 / rows

    po, pe = per_read(o), per_read(e)
    note = (f"reads: {o.get('rows')} vs {e.get('rows')}; last value "
            f"success={o.get('last_value')} / check_smtp exit={e.get('last_value')}")
    t.add("6", "collectd CPU per read of 4 ports: smtp_probe.so vs exec + check_smtp",
          srv, ms(po), ms(pe), ratio(po, pe), None, note=note)


def render_text(rows, header):
    """The table as aligned plain text."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    widths[-1] = min(widths[-1], 60)
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def md_escape(s):
    """Escape a table cell for Markdown."""
    return str(s).replace("|", "\\|")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gnuplot-script")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    machine = {}
    mpath = os.path.join(a.run, "machine.txt")
    if os.path.exists(mpath):
        with open(mpath) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                machine[k] = v
    raw = load_raw(os.path.join(a.run, "raw.txt"))
    t = Table()
    rows_inproc(t, raw)
    rows_process(t, raw, a.run)
    rows_exporter(t, raw)
    dat = rows_scaling(t, raw, a.out)
    rows_collectd(t, raw)

    png = None
    if dat and a.gnuplot_script:
        png = os.path.join(a.out, "scaling.png")
        try:
            probes = next((v.get("probes") for k, v in sorted(raw.items())
                           if k.startswith("scale.engine.")), "?")
            probes = f"{int(probes):,}" if str(probes).isdigit() else probes
            subprocess.run(["gnuplot", "-e",
                            f"datafile='{dat}'; outfile='{png}'; probes='{probes}'",
                            a.gnuplot_script], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"report: gnuplot failed: {e}", file=sys.stderr)
            png = None

    header = ["#", "Measurement", "Server", "Ours", "Reference", "Ratio", "Target",
              "Result", "Note"]
    print(render_text(t.rows, header))
    met = sum(1 for r in t.rows if r[7] == "met")
    missed = sum(1 for r in t.rows if r[7] == "MISSED")
    print(f"\ntargets: {met} met, {missed} missed")

    md = [f"# smtp-probe benchmark results ({machine.get('mode', '?')} run)", ""]
    md.append(f"Run {machine.get('date', '?')} at revision `{machine.get('revision', '?')}` "
              "with `bash bench/run.sh`. Every ratio compares two figures measured "
              "side by side in this run (absolute times on a shared machine drift).")
    md += ["", "| Machine and versions | |", "|---|---|"]
    for k in ("cpu", "memory", "kernel", "os", "load_at_start", "load_at_end", "duration",
              "compiler", "openssl",
              "postfix", "monitoring_plugins", "blackbox_exporter", "collectd",
              "hyperfine", "gnuplot"):
        md.append(f"| {k} | {md_escape(machine.get(k, '?'))} |")
    md += ["", f"Targets: **{met} met, {missed} missed**.", ""]
    md.append("| " + " | ".join(header) + " |")
    md.append("|" + "---|" * len(header))
    for r in t.rows:
        md.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    md += ["", "Ratio = ours / reference; \"Reference\" is the floor (rows 1, 2, 5), "
           "Debian's check_smtp/check_ssmtp (row 3), blackbox_exporter (row 4; the floor "
           "for its \"vs floor\" rows) or "
           "collectd's exec plugin running check_smtp (row 6). CPU is user+sys of the "
           "measured process (client for rows 1, 2, 5; exporter process from /proc for "
           "row 4; collectd and its children for row 6). See bench/README.md for the "
           "method of each row."]
    if png:
        md += ["", "## Scaling (row 5)", "", "![scaling](scaling.png)"]
    md += ["", "## Raw measurements", "", "```"]
    with open(os.path.join(a.run, "raw.txt")) as f:
        md += [line.rstrip("\n") for line in f]
    md += HYPERFINE_LINES
    md += ["```", ""]
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write("\n".join(md))
    print(f"\nwrote {os.path.join(a.out, 'latest.md')}" + (f" and {png}" if png else ""))


if __name__ == "__main__":
    main()
