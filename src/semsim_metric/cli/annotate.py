"""``semsim annotate``: run an annotation campaign for people (``serve``), see it (``status``), export it."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from .errors import CLIError

__all__ = ["register", "run"]


def _default_campaign(dataset: str) -> Path:
    return Path(f"{Path(dataset.rstrip('/')).name or 'dataset'}.campaign.sqlite")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim annotate`` to the command line."""
    a = sub.add_parser("annotate", help="annotate reconstructions in the browser, as the study's annotators did",
                       description="A local web app: people see one reconstruction at a time and name what they "
                       "recognise. Answers are saved at once in a campaign file (SQLite).")
    asub = a.add_subparsers(dest="annotate_command", required=True)
    s = asub.add_parser("serve", help="start (or resume) a campaign and serve the annotation app",
                        description="Start a campaign on DATASET (or resume the one in --campaign) and serve it.")
    s.add_argument("dataset", help="dataset folder or Hub id in the SemSim schema (e.g. from `semsim generate`)")
    s.add_argument("--campaign", type=Path, default=None,
                   help="campaign file (default: <dataset name>.campaign.sqlite in this folder); an existing one "
                        "resumes")
    s.add_argument("--votes-per-item", type=int, default=5, help="annotators per image (default 5, as in the study)")
    s.add_argument("--originals", action="store_true",
                   help="also annotate each original (after its reconstructions), for --reference original_consensus")
    s.add_argument("--classes", default=None, help="class names in class-label order, comma-separated (default: "
                                                   "from the dataset)")
    s.add_argument("--annotator", action="append", default=[], metavar="NAME",
                   help="allow only these names (repeatable; default: anyone who enters a name)")
    s.add_argument("--token", default=None, help="a shared access token every annotator must enter")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--title", default="SemSim annotation", help="the page title")
    s.set_defaults(func=run)
    st = asub.add_parser("status", help="print a campaign's progress and agreement")
    st.add_argument("campaign", type=Path)
    st.add_argument("--json", action="store_true", help="print the numbers as JSON")
    st.set_defaults(func=run)
    e = asub.add_parser("export", help="write a campaign's answers as a dataset folder (annotator_kind human)",
                        description="Write every row of the campaign's dataset with the people's votes merged in, "
                        "answers.csv and the agreement statistics in the dataset card.")
    e.add_argument("campaign", type=Path)
    e.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    e.add_argument("--dataset", default=None, help="read the rows from here (default: the campaign's dataset)")
    e.add_argument("--min-votes", type=int, default=None,
                   help="votes for the reference class that make a reconstruction recognised (default: a majority "
                        "of the campaign's target, 3 of 5 as in the study)")
    e.add_argument("--reference", choices=["true_class", "original_consensus"], default="true_class")
    e.add_argument("--include-incomplete", action="store_true",
                   help="also give images with fewer answers than the target their votes")
    e.add_argument("--overwrite", action="store_true")
    e.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``semsim annotate`` subcommand."""
    from ..annotate.storage import AnnotationError

    try:
        return {"serve": _serve, "status": _status, "export": _export}[args.annotate_command](args)
    except AnnotationError as err:
        raise CLIError(str(err)) from err


def _serve(args: argparse.Namespace) -> int:
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback and not args.token:
        raise CLIError(f"--host {args.host} lets other machines reach the app; give the campaign a --token as well.")
    from .._deps import require

    require("uvicorn", "the annotation app")
    import uvicorn

    from ..annotate.dataset import open_or_create_campaign
    from ..annotate.server import create_app

    path = args.campaign or _default_campaign(args.dataset)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    campaign, created = open_or_create_campaign(args.dataset, path, votes_per_item=args.votes_per_item,
                                                include_originals=args.originals, class_names=classes,
                                                token=args.token, annotators=args.annotator)
    n = len(campaign.items())
    what = "created" if created else f"resumed ({len(campaign.answers())} answers so far)"
    url = f"http://{args.host}:{args.port}/"
    print(f"semsim annotate: campaign {path} {what}: {n} images, {campaign.votes_per_item} annotators each, "
          f"{len(campaign.class_names)} classes. Every answer is saved at once.", file=sys.stderr)
    print(f"semsim annotate: annotators open {url} ; status at {url}status ; Ctrl+C stops (nothing is lost).",
          file=sys.stderr, flush=True)
    uvicorn.run(create_app(campaign, title=args.title), host=args.host, port=args.port, log_level="warning")
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
    print(f"{status['answers']} answers ({status['retracted']} undone), {status['votes_per_item']} annotators per "
          f"image; Fleiss' kappa over {status['kappa_items']} complete items: "
          f"{'not defined yet' if kappa is None else format(kappa, '.3f')}")
    for kind, counts in status["items"].items():
        print(f"  {kind}s: {counts['complete']} of {counts['items']} complete, {counts['answers']} answers")
    for a in status["annotators"]:
        agreement = "" if a["agreement"] is None else \
            f", agrees with the others on {a['agreement']:.1%} of {a['agreement_items']} shared images"
        print(f"  {a['name']}: {a['answers']} answers{agreement}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..annotate.dataset import export_campaign
    from ..annotate.storage import Campaign
    from ..data.schema import RecognitionRule

    campaign = Campaign(args.campaign)
    min_votes = args.min_votes if args.min_votes is not None else campaign.votes_per_item // 2 + 1
    result = export_campaign(campaign, args.out, dataset=args.dataset, rule=RecognitionRule(min_votes, args.reference),
                             include_incomplete=args.include_incomplete, overwrite=args.overwrite)
    print(result.summary())
    print(f"wrote {result.out} (load it with semsim_metric.load_annotations({str(result.out)!r}), or "
          f"datasets.load_dataset({str(result.out)!r}, download_mode='force_redownload') after a re-export)")
    return 0
