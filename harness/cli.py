"""``wmh``: run the suites, serve the mock target.

``wmh run``    runs ``suites/`` against the built-in mock (default) or the targets given,
               writing JUnit XML, allure results, ``results.json`` and ``matrix.html`` to ``reports/``.
``wmh report`` merges results shards of several runs (``merge``) or re-renders one (``html``).
``wmh serve``  runs the mock target (WS-Man on ``/wsman``) until interrupted, for other clients.
``wmh check-pcap FILE``  checks the WS-Man messages in a pcap/pcapng capture (exit 0 pass, 1 fail, 2 unreadable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _suites_dir() -> Path:
    for candidate in (Path.cwd() / "suites", REPO_ROOT / "suites"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("wmh: no suites/ directory found (run from the wm-harness checkout)")


def cmd_run(args: argparse.Namespace) -> int:
    reports = Path(args.reports).resolve()
    reports.mkdir(parents=True, exist_ok=True)
    pytest_args = [
        str(_suites_dir()),
        "-p", "no:cacheprovider",
        f"--junitxml={reports / 'junit.xml'}",
        f"--alluredir={reports / 'allure-results'}",
        "--clean-alluredir",
        f"--wm-reports={reports}",
        "-q",
    ]
    if args.target:
        pytest_args.append(f"--wm-target={args.target}")
    if args.inventory:
        pytest_args.append(f"--wm-inventory={args.inventory}")
    if args.no_validate:
        pytest_args.append("--wm-no-validate")
    if args.profile:
        pytest_args.append(f"--wm-profile={args.profile}")
    pytest_args.extend(args.pytest_args)
    code = int(pytest.main(pytest_args))
    print(f"wmh: reports written to {reports} (matrix.html, results.json, junit.xml, allure-results/)")
    if args.allure_report:
        from harness.report.allure import REPORT_DIR, RESULTS_DIR, generate_report

        run = generate_report(reports / RESULTS_DIR, reports / REPORT_DIR)
        print(f"wmh: {run.reason}" if run.generated else f"wmh: allure generate skipped: {run.reason}")
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.auth.errors import AuthError
    from harness.auth.policy import AuthPolicy, CbtHardening
    from harness.auth.tls import ServerTls, generate_self_signed
    from harness.cim.mof import default_store
    from harness.targets.mock.config import MockConfig
    from harness.targets.mock.http_server import serve_forever

    password = os.environ.get(args.password_env) if args.password_env else None
    config = MockConfig(host=args.host, port=args.port, username=args.user)
    config.auth = AuthPolicy(allow_basic=args.basic, allow_negotiate=args.negotiate,
                             allow_unencrypted=args.allow_unencrypted,
                             cbt_hardening=CbtHardening(args.cbt_hardening),
                             allow_kerberos=args.kerberos, allow_credssp=args.credssp)
    if args.cert or args.key or args.https:
        if bool(args.cert) != bool(args.key):
            raise SystemExit("wmh serve: --cert and --key go together")
        try:
            config.tls = (ServerTls.from_files(Path(args.cert), Path(args.key)) if args.cert
                          else generate_self_signed(("localhost", "127.0.0.1", args.host)))
        except AuthError as exc:
            raise SystemExit(f"wmh serve: {exc.reason}") from None
        if args.cert_out:
            Path(args.cert_out).write_bytes(config.tls.cert_pem)
    if password:
        config.password = password
    else:
        print(f"wmh serve: {args.password_env} is not set; a random password was generated for "
              f"user {config.username!r}. Set {args.password_env} to choose one.", file=sys.stderr)
        print(f"password: {config.password}", file=sys.stderr)
    config.epm_port, config.wmi_port, config.wmi_enabled = args.epm_port, args.wmi_port, args.epm_port >= 0
    store = default_store()
    from harness.targets.mock.wmi_server import run_with_wmi

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_with_wmi(store, config, serve_forever(store, config)))
    return 0


def cmd_check_pcap(args: argparse.Namespace) -> int:
    """Exit 0 when every message passes, 1 when one fails, 2 when the file cannot be read."""
    from harness.capture.check import run_check_pcap

    password = os.environ.get(args.password_env) if args.password_env else None
    # the SSLKEYLOGFILE convention (NSS key log format) when --tls-keylog is not given
    keylog = args.tls_keylog or os.environ.get("SSLKEYLOGFILE") or None
    code, output = run_check_pcap(args.file, as_json=args.json, password=password, keytab=args.keytab,
                                  tls_keylog=keylog)
    print(output, file=sys.stderr if code == 2 else sys.stdout)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wmh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the conformance suites and write reports/")
    run.add_argument("--target", help="'mock' (default) or a WS-Man URL; credentials from WMH_USERNAME/WMH_PASSWORD")
    run.add_argument("--inventory", help="TOML inventory of targets")
    run.add_argument("--reports", default="reports", help="output directory (default: reports)")
    run.add_argument("--no-validate", action="store_true", help="skip XSD validation of traffic")
    run.add_argument("--profile", help="named capability set for the targets (windows, read-only, dmtf-wsman, ...)")
    run.add_argument("--allure-report", action="store_true",
                     help="also generate the allure HTML report (reports/allure-report) when the allure "
                          "command line is found (PATH or .tools/node_modules/.bin/allure)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments after --")
    run.set_defaults(func=cmd_run)

    from harness.report.cli import add_report_parser

    add_report_parser(sub)

    serve = sub.add_parser("serve", help="serve the mock target (WS-Man on /wsman)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5985)
    serve.add_argument("--user", default="wmh")
    serve.add_argument("--password-env", default="WMH_MOCK_PASSWORD",
                       help="environment variable holding the password (default WMH_MOCK_PASSWORD)")
    serve.add_argument("--https", action="store_true",
                       help="serve HTTPS with a self-signed certificate made at start (SAN localhost, 127.0.0.1)")
    serve.add_argument("--cert", help="PEM certificate for HTTPS (with --key) instead of a generated one")
    serve.add_argument("--key", help="PEM private key of --cert")
    serve.add_argument("--cert-out", help="write the (generated) HTTPS certificate here, for clients to trust")
    serve.add_argument("--credssp", action=argparse.BooleanOptionalAction, default=False,
                       help="accept and offer CredSSP (ServiceAuthType CredSSP, MS-WSMV 2.2.4.34; default off "
                            "as on Windows)")
    serve.add_argument("--kerberos", action=argparse.BooleanOptionalAction, default=False,
                       help="offer the Kerberos scheme (needs the service keytab in KRB5_KTNAME; Kerberos "
                            "inside Negotiate works whenever the keytab is there)")
    serve.add_argument("--basic", action=argparse.BooleanOptionalAction, default=True,
                       help="AllowBasic (default on)")
    serve.add_argument("--negotiate", action=argparse.BooleanOptionalAction, default=True,
                       help="AllowNegotiate: NTLM, raw or in SPNEGO (default on)")
    serve.add_argument("--allow-unencrypted", action=argparse.BooleanOptionalAction, default=True,
                       help="AllowUnencrypted: accept plain-text messages over HTTP (default on)")
    serve.add_argument("--cbt-hardening", choices=["None", "Relaxed", "Strict"], default="Relaxed",
                       help="CbtHardeningLevel for HTTPS channel binding (default Relaxed)")
    serve.add_argument("--epm-port", type=int, default=135,
                       help="WMI over DCOM: endpoint mapper port (default 135; 0 = ephemeral; -1 = no WMI)")
    serve.add_argument("--wmi-port", type=int, default=0,
                       help="WMI over DCOM: ORPC port named in the OXID bindings (default 0 = ephemeral)")
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-pcap", help="check the WS-Man and DCE/RPC (WMI over DCOM) traffic in a "
                                              "pcap/pcapng capture")
    check.add_argument("file", help="capture file (pcap or pcapng)")
    check.add_argument("--json", action="store_true", help="print the per-message report as JSON")
    check.add_argument("--password-env", default=None,
                       help="environment variable holding the password for encrypted (multipart/encrypted) bodies")
    check.add_argument("--keytab", default=None, metavar="PATH",
                       help="service keytab (MIT format) to open Kerberos-sealed bodies (RFC 4120, RFC 4121)")
    check.add_argument("--tls-keylog", default=None, metavar="PATH",
                       help="TLS key log (NSS format, as SSLKEYLOGFILE writes) to decrypt HTTPS streams "
                            "(default: $SSLKEYLOGFILE)")
    check.set_defaults(func=cmd_check_pcap)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run", *(argv or [])])
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
