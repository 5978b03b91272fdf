"""``semsim annotate``: run an annotation campaign for people (``serve``), see it (``status``), export it."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CLIError

if TYPE_CHECKING:
    from ..annotate.storage import Campaign

__all__ = ["register", "run"]


def _default_campaign(dataset: str) -> Path:
    """Beside a local dataset folder (``data/gen-small`` -> ``data/gen-small.campaign.sqlite``), so the campaign
    stays with its data whatever folder the command runs in; for a Hub id, in the current folder."""
    folder = Path(dataset.rstrip("/"))
    name = f"{folder.name or 'dataset'}.campaign.sqlite"
    return folder.parent / name if folder.is_dir() else Path(name)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim annotate`` to the command line."""
    a = sub.add_parser(
        "annotate",
        help="annotate reconstructions in the browser, as the study's annotators did",
        description="A local web app: people see one reconstruction at a time and name what they "
        "recognise. Answers are saved at once in a campaign file (SQLite).",
    )
    asub = a.add_subparsers(dest="annotate_command", required=True)
    s = asub.add_parser(
        "serve",
        help="start (or resume) a campaign and serve the annotation app",
        description="Start a campaign on DATASET (or resume the one in --campaign) and serve it.",
    )
    s.add_argument(
        "dataset", help="dataset folder or Hub id in the SemSim schema (e.g. from `semsim generate`)"
    )
    s.add_argument(
        "--campaign",
        type=Path,
        default=None,
        help="campaign file (default: <dataset folder>.campaign.sqlite beside a local dataset folder, "
        "<name>.campaign.sqlite here for a Hub id); an existing one "
        "resumes",
    )
    s.add_argument(
        "--votes-per-item", type=int, default=5, help="annotators per image (default 5, as in the study)"
    )
    s.add_argument(
        "--originals",
        action="store_true",
        help="also annotate each original (after its reconstructions), for --reference original_consensus",
    )
    s.add_argument(
        "--classes",
        default=None,
        help="class names in class-label order, comma-separated (default: from the dataset)",
    )
    s.add_argument(
        "--annotator",
        action="append",
        default=None,
        metavar="NAME",
        help="allow only these names (repeatable; default: anyone who enters a name; on resume: the "
        "stored list)",
    )
    s.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="a file holding the shared access token people need to join (or set $SEMSIM_ANNOTATE_TOKEN)",
    )
    s.add_argument(
        "--token",
        default=None,
        help="the token itself (visible to other users of this machine in `ps`: prefer --token-file)",
    )
    s.add_argument(
        "--update-access",
        action="store_true",
        help="on resume, store a different --token/--annotator list instead of refusing",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    s.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name people use to reach the app (repeatable; requests for other names are "
        "refused)",
    )
    s.add_argument(
        "--leases-per-client",
        type=int,
        default=4,
        help="images one computer may have on screen at once across all names (default 4)",
    )
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--title", default="SemSim annotation", help="the page title")
    s.set_defaults(func=run)
    st = asub.add_parser("status", help="print a campaign's progress and agreement")
    st.add_argument("campaign", type=Path)
    st.add_argument("--json", action="store_true", help="print the numbers as JSON")
    st.set_defaults(func=run)
    e = asub.add_parser(
        "export",
        help="write a campaign's answers as a dataset folder (annotator_kind human)",
        description="Write every row of the campaign's dataset with the people's votes merged in, "
        "answers.csv and the agreement statistics in the dataset card.",
    )
    e.add_argument("campaign", type=Path)
    e.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    e.add_argument(
        "--dataset", default=None, help="read the rows from here (default: the campaign's dataset)"
    )
    e.add_argument(
        "--min-votes",
        type=int,
        default=None,
        help="votes for the reference class that make a reconstruction recognised (default: a majority "
        "of the campaign's target, 3 of 5 as in the study)",
    )
    e.add_argument("--reference", choices=["true_class", "original_consensus"], default="true_class")
    e.add_argument(
        "--include-incomplete",
        action="store_true",
        help="also give images with fewer answers than the target their votes",
    )
    e.add_argument("--overwrite", action="store_true")
    e.set_defaults(func=run)
    r = asub.add_parser(
        "resume-code",
        help="give an annotator who lost their resume code a new one",
        description="Print a new resume code for NAME (the old one stops working); they enter it "
        "with their name on the start page.",
    )
    r.add_argument("campaign", type=Path)
    r.add_argument("name")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``semsim annotate`` subcommand."""
    from ..annotate.storage import AnnotationError

    try:
        return {"serve": _serve, "status": _status, "export": _export, "resume-code": _resume_code}[
            args.annotate_command
        ](args)
    except AnnotationError as err:
        raise CLIError(str(err)) from err


def _token(args: argparse.Namespace) -> str | None:
    """The access token from --token-file, --token or $SEMSIM_ANNOTATE_TOKEN (``None``: none given)."""
    given = [
        what
        for what, value in (("--token-file", args.token_file), ("--token", args.token))
        if value is not None
    ]
    if len(given) > 1:
        raise CLIError("give the token once: --token-file or --token, not both.")
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise CLIError(
                f"cannot read the token file {args.token_file}: {err.__class__.__name__}."
            ) from err
        if not token:
            raise CLIError(f"the token file {args.token_file} is empty.")
        return token
    if args.token is not None:
        print(
            "semsim annotate: warning: a token on the command line is visible to other users of this machine "
            "(ps); prefer --token-file or $SEMSIM_ANNOTATE_TOKEN.",
            file=sys.stderr,
        )
        return args.token
    return os.environ.get("SEMSIM_ANNOTATE_TOKEN") or None


def _serve(args: argparse.Namespace) -> int:
    """Open or create the campaign and serve the annotation app until Ctrl+C."""
    loopback = _is_loopback(args.host)
    if args.leases_per_client < 1:
        raise CLIError(f"--leases-per-client must be at least 1, got {args.leases_per_client}.")
    token = _token(args)
    path = args.campaign or _default_campaign(args.dataset)
    if not loopback and not token and not path.exists():
        raise CLIError(
            f"--host {args.host} lets other machines reach the app; give the campaign a token as well "
            "(--token-file FILE or $SEMSIM_ANNOTATE_TOKEN)."
        )
    from .._deps import require

    require("uvicorn", "the annotation app")
    import uvicorn

    from ..annotate.dataset import open_or_create_campaign
    from ..annotate.security import HostRule
    from ..annotate.server import create_app

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    campaign, created = open_or_create_campaign(
        args.dataset,
        path,
        votes_per_item=args.votes_per_item,
        include_originals=args.originals,
        class_names=classes,
        token=token,
        annotators=args.annotator,
        update_access=args.update_access,
    )
    if not loopback and not campaign.requires_token:  # what is in force, not what was typed
        raise CLIError(
            f"campaign {path} has no access token, so it may only be served on this machine; resume it "
            f"with --update-access and a token to serve it on --host {args.host}."
        )
    campaign.check_writable()
    _announce(args, campaign, created, path)
    app = create_app(
        campaign,
        title=args.title,
        hosts=HostRule.for_bind_address(args.host, args.allowed_host),
        leases_per_client=args.leases_per_client,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _is_loopback(host: str) -> bool:
    """Whether ``--host`` is a loopback address (or ``localhost``), reachable from this machine only."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _announce(args: argparse.Namespace, campaign: Campaign, created: bool, path: Path) -> None:
    """Tell the person serving (on stderr) which campaign runs, who may join, and where to open it."""
    n = len(campaign.items())
    what = "created" if created else f"resumed ({len(campaign.answers())} answers so far)"
    url = f"http://{args.host}:{args.port}/"
    access = (
        "people need the access token to join"
        if campaign.requires_token
        else "anyone who can open the page may join"
    ) + (f"; only {', '.join(campaign.allowed_annotators)}" if campaign.allowed_annotators else "")
    where = f"{path.resolve()}" + (
        "" if args.campaign else " (the default, beside the dataset; --campaign FILE to choose)"
    )
    print(
        f"semsim annotate: campaign {where} {what}: {n} images, {campaign.votes_per_item} annotators each, "
        f"{len(campaign.class_names)} classes; {access}. Every answer is saved at once.",
        file=sys.stderr,
    )
    print(
        f"semsim annotate: annotators open {url} ; status at {url}status ; Ctrl+C stops (nothing is lost).",
        file=sys.stderr,
        flush=True,
    )


def _resume_code(args: argparse.Namespace) -> int:
    from ..annotate.storage import Campaign

    code = Campaign(args.campaign).reissue_resume_code(args.name)
    print(f"new resume code for {args.name}: {code}")
    print("they enter it with their name on the start page; the old code no longer works.", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from ..annotate.status import campaign_status
    from ..annotate.storage import Campaign

    status = campaign_status(Campaign(args.campaign))
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    kappa = status["fleiss_kappa"]
    print(
        f"{status['answers']} answers ({status['retracted']} undone), {status['votes_per_item']} annotators per "
        f"image; Fleiss' kappa over {status['kappa_items']} complete items: "
        f"{'not defined yet' if kappa is None else format(kappa, '.3f')}"
    )
    for kind, counts in status["items"].items():
        print(f"  {kind}s: {counts['complete']} of {counts['items']} complete, {counts['answers']} answers")
    for a in status["annotators"]:
        agreement = (
            ""
            if a["agreement"] is None
            else f", agrees with the others on {a['agreement']:.1%} of {a['agreement_items']} shared images"
        )
        print(f"  {a['name']}: {a['answers']} answers{agreement}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..annotate.dataset import export_campaign
    from ..annotate.storage import Campaign
    from ..data.schema import RecognitionRule

    campaign = Campaign(args.campaign)
    min_votes = args.min_votes if args.min_votes is not None else campaign.votes_per_item // 2 + 1
    result = export_campaign(
        campaign,
        args.out,
        dataset=args.dataset,
        rule=RecognitionRule(min_votes, args.reference),
        include_incomplete=args.include_incomplete,
        overwrite=args.overwrite,
    )
    print(result.summary())
    print(
        f"wrote {result.out} (load it with semsim_metric.load_annotations({str(result.out)!r}), or "
        f"datasets.load_dataset({str(result.out)!r}, download_mode='force_redownload') after a re-export)"
    )
    return 0
