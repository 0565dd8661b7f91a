"""The model card: one project's purpose, data, metrics, costs, fairness, labels, checks and history, as HTML or Markdown.

Two steps. :func:`gather` reads the store once into a :class:`CardData` (the only function here
that touches the database). :func:`sections` turns that data into neutral blocks (paragraphs,
bullet lists, tables, figures) and :func:`to_html` / :func:`to_markdown` render the blocks: pure,
data in, text out. Every user string (project, class, column, group, user names, notes, the
brief) is escaped in exactly one place, the renderer: ``html.escape`` for HTML, :func:`md_escape`
for Markdown; figures escape through :mod:`hitl_core.charts`, and plotly writes ``<`` inside its
JSON as ``\\u003c``. The HTML carries plotly.js inline (about 4.8 MB), so it opens offline.
"""
from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from datetime import date, datetime, timezone
from typing import Literal

import pandas as pd
import plotly.graph_objects as go

from hitl_core import brief as briefs
from hitl_core import agreement, charts, costs, loop, story
from hitl_core.data import Dataset
from hitl_core.evaluate import LOWER_IS_BETTER, METRIC_NAMES
from hitl_core.explain import ShapExplainer, global_shap
from hitl_core.fairness import FairnessReport, attribute_sets, find_summary
from hitl_core.markup import md_escape
from hitl_core.models import BASELINE_KINDS, MODEL_KINDS
from hitl_core.records import ModelVersion, Project
from hitl_core.store import Store

Format = Literal["html", "md"]
FORMATS: dict[str, str] = {"html": "HTML (charts inline, opens offline)", "md": "Markdown"}
EXPLAIN_ROWS = 200  # SHAP on a seeded sample of the training pool: enough to rank features, cheap on any model


# --------------------------------------------------------------------------- the facts
@dataclass(frozen=True)
class CardData:
    """Everything the card says, read once from the store (and SHAP on a small sample)."""

    project: Project
    versions: list[ModelVersion]
    current: ModelVersion
    model_changes: pd.DataFrame  # when, who, change, why: rollbacks, restores and promotions of the current model
    split_sizes: dict[str, int]  # train / validation / test rows
    n_unlabelled: int  # training-pool rows without any label (people may review them)
    class_shares: dict[str, float]  # given labels, all splits
    majority_class: str
    accuracy: story.Accuracy | None
    review: story.ReviewEffect
    fairness: list[FairnessReport]  # current version, validation, one per single sensitive attribute
    labellers: pd.DataFrame  # user, decisions, rows, changed
    n_multi_labelled: int  # rows decided by more than one person
    agreement: list[str]  # hitl_core.agreement's sentences, when rows have several people's labels
    drivers: list[story.Driver]
    n_explained: int
    brief: briefs.Brief | None
    checks: list[briefs.CheckResult]
    goal: briefs.GoalProgress | None
    cost_model: costs.CostModel | None
    version_costs: dict[str, costs.ExpectedCost] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def labellers(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per person: decisions made, rows decided, and rows where they changed the model's answer."""
    columns = ["person", "decisions", "rows", "changed the model's answer"]
    if decisions.empty:
        return pd.DataFrame(columns=columns)
    changed = decisions["new_label"].astype(str) != decisions["predicted_label"].astype(str)
    table = decisions.assign(changed=changed).groupby("user").agg(
        decisions=("id", "size"), rows=("row_key", "nunique"), changed=("changed", "sum"))
    table = table.reset_index().sort_values("decisions", ascending=False, kind="stable")
    table.columns = columns
    return table.reset_index(drop=True)


MODEL_CHANGES = ("rollback", "restore", "promote")


def model_changes(events: pd.DataFrame) -> pd.DataFrame:
    """People's changes of which version is current (``Store.events``), with the reason they gave."""
    chosen = events[events["action"].isin(MODEL_CHANGES)]
    return pd.DataFrame({"when": [f"{t:%Y-%m-%d %H:%M}" for t in chosen["created_at"]],
                         "who": chosen["actor"].astype(str).tolist(),
                         "change": [f"{a} to {o}" for a, o in zip(chosen["action"], chosen["object"])],
                         "why": chosen["note"].fillna("").astype(str).tolist()})


def explain_sample(dataset: Dataset, project: Project, version: ModelVersion, store: Store, *,
                   n_rows: int = EXPLAIN_ROWS) -> pd.DataFrame:
    """Exact SHAP values on a seeded sample of the training pool (the same rows as the Explain page draws)."""
    pool = dataset.rows("train")
    rows = pd.Series(pool).sample(min(n_rows, len(pool)), random_state=project.seed)
    fitted = store.load_model(project.id, version.version)
    explainer = ShapExplainer(fitted, dataset.schema, dataset.features.loc[pool], seed=project.seed)
    return global_shap(explainer, dataset.features.loc[pd.Index(rows)], story.explained_class(dataset.schema))


def gather(store: Store, project_id: int, *, dataset: Dataset | None = None, shap_tidy: pd.DataFrame | None = None,
           today: date | None = None) -> CardData:
    """Read what the card needs; ``shap_tidy`` (tidy SHAP values already computed, e.g. by the app) skips SHAP."""
    project = store.project(project_id)
    current = store.current_version(project_id)
    if current is None:
        raise ValueError(f"Project {project_id} has no trained model yet, so there is nothing to describe; "
                         "create it again (a first model is trained on creation).")
    dataset = dataset if dataset is not None else store.load_dataset(project)
    schema = dataset.schema
    versions = store.model_versions(project_id)
    decisions = store.decisions(project_id)
    split_sizes = {part: len(dataset.rows(part)) for part in ("train", "validation", "test")}
    labels_now = loop.labels_at(dataset, decisions, current)
    majority = costs.majority_class(labels_now.loc[dataset.rows("train")])
    n_test = split_sizes["test"]
    fairness = [report for columns in attribute_sets(schema.sensitive) if len(columns) == 1 and schema.favourable
                and (report := find_summary(current.fairness, columns, schema.favourable,
                                            classes=schema.classes)) is not None]
    tidy = shap_tidy if shap_tidy is not None else explain_sample(dataset, project, current, store)
    brief = briefs.current_brief(store, project_id)
    cost_model = costs.project_costs(project)
    n_multi = int((decisions.groupby("row_key")["user"].nunique() > 1).sum()) if len(decisions) else 0
    return CardData(
        project=project, versions=versions, current=current, split_sizes=split_sizes,
        model_changes=model_changes(store.events(project_id)),
        n_unlabelled=int(dataset.labels.loc[dataset.rows("train")].isna().sum()),
        class_shares=dataset.labels.dropna().astype(str).value_counts(normalize=True).to_dict(),
        majority_class=majority,
        accuracy=story.accuracy(current, n_test, majority_class=majority),
        review=story.review_effect(versions, current, decisions, n_test, majority_class=majority),
        fairness=fairness, labellers=labellers(decisions),
        n_multi_labelled=n_multi,
        agreement=agreement.agreement(agreement.votes(decisions), schema.classes).sentences() if n_multi else [],
        drivers=story.drivers(tidy, schema.categorical), n_explained=int(tidy["row"].nunique()) if len(tidy) else 0,
        brief=brief, checks=briefs.evaluate_checks(brief, current, schema) if brief else [],
        goal=briefs.goal_progress(brief, current, today or date.today()) if brief else None,
        cost_model=cost_model,
        version_costs=costs.version_costs(current, cost_model, majority=majority) if cost_model else {},
    )


# --------------------------------------------------------------------------- the sentences both pages and card use
def checks_sentence(results: Sequence[briefs.CheckResult], has_brief: bool) -> str:
    """"2 of 3 safety checks pass on v4; failing: recall of defaults" or what to do when there are none."""
    if not has_brief:
        return "No project brief yet, so no safety checks: the lead writes the brief (goal, checks) on the Brief page."
    if not results:
        return "The brief names no safety checks yet: add rules such as 'four-fifths met' on the Brief page."
    passed = sum(r.passed is True for r in results)
    failed = [r.check for r in results if r.passed is False]
    unknown = sum(r.passed is None for r in results)
    text = f"{passed} of {len(results)} safety checks pass on v{results[0].version}"
    if failed:
        text += f"; failing: {', '.join(failed)}"
    if unknown:
        text += f"; {unknown} cannot be judged yet"
    return text + "."


def goal_sentence(data: CardData) -> str:
    """Progress to the SMART goal, or what to do when there is none."""
    if data.brief is None:
        return "No SMART goal yet: the lead sets one in the project brief (e.g. balanced accuracy ≥ 0.80 by a date)."
    if data.goal is None:
        return "The brief has no SMART goal yet: add a metric target with a date on the Brief page."
    return data.goal.sentence()


def cost_sentence(data: CardData) -> str:
    """Expected cost of the model beside the majority guess, or how to set costs."""
    if data.cost_model is None:
        return "No costs set, so no expected cost: a lead prices a wrong decision and a review on the Metrics page."
    model, guess = data.version_costs["model"], data.version_costs["majority"]
    verdict = ("the model is cheaper" if model.high < guess.low else "the model costs more" if model.low > guess.high
               else "no clear difference")
    return (f"Expected cost of the model's decisions on validation: {model.text()} "
            f"({story.pct(costs.CONFIDENCE)} bootstrap interval), against {guess.text()} when always answering "
            f"'{data.majority_class}': {verdict}.")


def labels_sentence(data: CardData) -> str:
    """Who labelled, and whether rows have several labellers."""
    multi = ("one labeller per row" if data.n_multi_labelled == 0
             else f"{data.n_multi_labelled:,} rows were decided by more than one person (the latest decision counts)")
    given = sum(data.split_sizes.values()) - data.n_unlabelled
    people = len(data.labellers)
    return (f"{given:,} labels came with the data; {int(data.labellers['decisions'].sum()) if people else 0:,} "
            f"decisions came from {people:,} {'person' if people == 1 else 'people'}; {multi}.")


def fairness_sentences(data: CardData) -> list[str]:
    """One sentence per sensitive attribute, or why fairness is not judged."""
    missing = story.fairness_missing(data.project.schema)
    if missing:
        return [missing]
    gaps = [story.group_gap(r, data.project.schema) for r in data.fairness]
    found = [g.sentence() for g in gaps if g is not None]
    return found or ["No group is large enough to compare on validation (fewer than two groups with enough rows)."]


def limitations(data: CardData) -> list[str]:
    """What the numbers cannot tell, generated from the data (and the brief's premortem)."""
    notes = []
    if data.accuracy is not None:
        notes.append(f"The held-out test set has {data.accuracy.n:,} rows: accuracy is known only to within "
                     f"{story.pct(data.accuracy.low)} to {story.pct(data.accuracy.high)}.")
    notes.append("The model learns from the labels it is given; if past decisions were biased, it repeats them. "
                 "Labels people changed are recorded in the audit trail.")
    if data.n_unlabelled:
        notes.append(f"{data.n_unlabelled:,} training rows have no label yet and were not used to train.")
    small = sorted({g for r in data.fairness for g in r.too_small})
    if small:
        notes.append(f"Groups too small to judge fairly: {', '.join(small)}.")
    if data.project.schema.excluded:
        notes.append(f"Columns left out of the features: {', '.join(data.project.schema.excluded)}.")
    notes.append("Explanations (SHAP) describe this model's arithmetic, not cause and effect in the world.")
    if data.brief is not None:
        notes += [f"Premortem: {p.failure}" + (f" → {p.mitigation}" if p.mitigation else "")
                  for p in data.brief.premortem]
    return notes


# --------------------------------------------------------------------------- neutral blocks
@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame


@dataclass(frozen=True)
class Figure:
    """A chart, built only by a renderer that draws it (Markdown skips it: ~30 ms per plotly figure)."""

    build: Callable[[], go.Figure]


Block = Paragraph | Bullets | Table | Figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


SECTION_TITLES = ("Intended use and stakeholders", "Data and split", "Metrics beside baselines", "Costs",
                  "Fairness by group", "Label provenance", "Safety checks", "What drives the model", "Limitations",
                  "Version history")


def _metrics_table(version: ModelVersion, part: str) -> pd.DataFrame:
    rows = []
    for name in METRIC_NAMES:
        value = getattr(version, part).get(name)
        if value is None:
            continue
        row = {"metric": charts.METRIC_LABELS[name] + (" (lower is better)" if name in LOWER_IS_BETTER else ""),
               f"model v{version.version}": f"{value:.3f}"}
        for kind, label in BASELINE_KINDS.items():
            base = version.baselines.get(kind, {}).get(part, {}).get(name)
            row[label] = "n/a" if base is None else f"{base:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def _fairness_table(report: FairnessReport) -> pd.DataFrame:
    table = report.by_group
    return pd.DataFrame({
        report.sensitive: [str(g) for g in table.index],
        "rows": [f"{int(n):,}" for n in table["count"]],
        f"share predicted '{report.positive_class}'": [_share(v) for v in table["selection_rate"]],
        "share truly": [_share(v) for v in table["base_rate"]],
        "accuracy": [_share(v) for v in table["accuracy"]],
        "true positive rate": [_share(v) for v in table["tpr"]],
        "false positive rate": [_share(v) for v in table["fpr"]],
        "judged": ["too small" if s else "yes" for s in table["too_small"]],
    })


def _share(value: float) -> str:
    return "n/a" if pd.isna(value) else story.pct(float(value))


def sections(data: CardData) -> list[Section]:
    """The card's content in order, as blocks any renderer can write."""
    project, schema, current = data.project, data.project.schema, data.current
    brief = data.brief
    if brief is None:
        intended: tuple[Block, ...] = (Paragraph("No project brief yet: the lead writes the hypothesis, the "
                                                 "stakeholders and a SMART goal on the Brief page."),)
    else:
        intended = (Paragraph(f"Hypothesis: {brief.hypothesis or 'not written yet'}"),
                    Paragraph(f"Optimised for: {brief.optimisation_metric or 'not named'}; people will judge "
                              f"success by: {brief.success_measures or 'not written yet'}"),
                    Paragraph(goal_sentence(data)))
        if brief.stakeholders:
            intended += (Table(pd.DataFrame([{"stakeholder": s.name, "kind": s.kind, "concerns": s.concerns,
                                              "judges success by": s.success} for s in brief.stakeholders])),)
    favourable = story.outcome(schema) or "not chosen"
    data_blocks = (
        Paragraph(f"Source: {project.source}. Target '{schema.target}' with classes "
                  f"{', '.join(f'{c} ({story.pct(data.class_shares.get(c, 0.0))})' for c in schema.classes)}; "
                  f"favourable outcome: {favourable}."),
        Table(pd.DataFrame([{"split": part, "rows": f"{n:,}"} for part, n in data.split_sizes.items()])),
        Bullets((f"Features ({len(schema.features)}): {', '.join(schema.features)}",
                 f"Sensitive (not features): {', '.join(schema.sensitive) or 'none marked'}",
                 f"Identifier / personal columns (not features): "
                 f"{', '.join([c for c in (schema.id_column, *schema.pii) if c]) or 'none'}",
                 "The held-out test rows were split off first and never used to train or tune.")),
    )
    metric_blocks: tuple[Block, ...] = ()
    if data.accuracy is not None:
        metric_blocks += (Paragraph(data.accuracy.sentence()),
                          Figure(partial(charts.accuracy_story, data.accuracy, data.review.before)))
    metric_blocks += (Paragraph(f"Model v{current.version} ({MODEL_KINDS.get(current.model_kind, current.model_kind)})"
                                ", held-out test:"), Table(_metrics_table(current, "test")),
                      Paragraph("Validation (what the live charts show):"), Table(_metrics_table(current, "validation")))
    cost_blocks: tuple[Block, ...] = (Paragraph(cost_sentence(data)),)
    if data.cost_model is not None:
        cost_blocks += (Table(pd.DataFrame([{"decided by": name, "per 100 decisions": c.text(),
                                             "costly errors": f"{c.costly_errors:,.0f}"}
                                            for name, c in data.version_costs.items()])),)
    fairness_blocks: tuple[Block, ...] = tuple(Paragraph(s) for s in fairness_sentences(data))
    for report in data.fairness:
        fairness_blocks += (Table(_fairness_table(report)), Figure(partial(charts.selection_rates, report)))
    check_blocks: tuple[Block, ...] = (Paragraph(checks_sentence(data.checks, brief is not None)),)
    if data.checks:
        check_blocks += (Table(pd.DataFrame([{"check": r.check, "result": {True: "pass", False: "FAIL",
                                                                           None: "cannot tell"}[r.passed],
                                              "detail": r.detail} for r in data.checks])),)
    target = story.outcome(schema) or story.explained_class(schema)
    driver_blocks: tuple[Block, ...] = (Paragraph(story.drivers_sentence(data.drivers, target, data.n_explained)),)
    if data.drivers:
        driver_blocks += (Figure(partial(charts.drivers_bar, data.drivers, target)),)
    history = pd.DataFrame([{"version": v.version, "status": v.status, "created": f"{v.created_at:%Y-%m-%d %H:%M}",
                             "human labels": f"{v.n_human_labels:,}",
                             "validation accuracy": _number(v.validation.get("accuracy")),
                             "test accuracy": _number(v.test.get("accuracy")), "trigger": v.trigger,
                             "why": v.status_reason} for v in reversed(data.versions)])
    return [
        Section(SECTION_TITLES[0], intended),
        Section(SECTION_TITLES[1], data_blocks),
        Section(SECTION_TITLES[2], metric_blocks),
        Section(SECTION_TITLES[3], cost_blocks),
        Section(SECTION_TITLES[4], fairness_blocks),
        Section(SECTION_TITLES[5], (Paragraph(labels_sentence(data)), *(Paragraph(s) for s in data.agreement),
                                    Paragraph(data.review.sentence()),
                                    *((Table(data.labellers),) if len(data.labellers) else ()))),
        Section(SECTION_TITLES[6], check_blocks),
        Section(SECTION_TITLES[7], driver_blocks),
        Section(SECTION_TITLES[8], (Bullets(tuple(limitations(data))),)),
        Section(SECTION_TITLES[9], (Table(history), *((Paragraph("Changes of the current model, by people:"),
                                                        Table(data.model_changes)) if len(data.model_changes) else ()))),
    ]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _title(data: CardData) -> str:
    return f"Model card: {data.project.name}"


def _subtitle(data: CardData) -> str:
    return (f"Project #{data.project.id}, model v{data.current.version}; generated "
            f"{data.generated_at:%Y-%m-%d %H:%M} UTC by HITL Workbench.")


# --------------------------------------------------------------------------- renderers
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;line-height:1.5}
h1{font-size:1.9rem;margin-bottom:.2rem}h2{font-size:1.35rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}th,td{border:1px solid #ddd;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f4f6fa}.sub{color:#666}
"""


def to_html(data: CardData) -> str:
    """A self-contained HTML page: styles and plotly.js inline, no request to any server when opened."""
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(_title(data))}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{e(_title(data))}</h1><p class=\"sub\">{e(_subtitle(data))}</p>"]
    first_figure = True
    for section in sections(data):
        parts.append(f"<h2>{e(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{e(block.text)}</p>")
            elif isinstance(block, Bullets):
                parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{e(str(c))}</th>" for c in block.frame.columns)
                body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>"
                               for row in block.frame.itertuples(index=False))
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                parts.append(block.build().to_html(full_html=False, include_plotlyjs=first_figure,
                                                  config={"displaylogo": False, "responsive": True}))
                first_figure = False
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _md_cell(value: object) -> str:
    return md_escape(value) or " "


def to_markdown(data: CardData) -> str:
    """The same card as Markdown (tables for the charts' numbers; the charts themselves are in the HTML card)."""
    lines = [f"# {md_escape(_title(data))}", "", f"_{md_escape(_subtitle(data))}_", ""]
    for section in sections(data):
        lines += [f"## {md_escape(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [md_escape(block.text), ""]
            elif isinstance(block, Bullets):
                lines += [f"- {md_escape(item)}" for item in block.items] + [""]
            elif isinstance(block, Table):
                columns = [_md_cell(c) for c in block.frame.columns]
                lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |"
                          for row in block.frame.itertuples(index=False)]
                lines.append("")
    return "\n".join(lines)


def render(data: CardData, fmt: Format) -> str:
    """The card in ``fmt`` (``html`` or ``md``)."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown card format '{fmt}'; choose one of {sorted(FORMATS)}.")
    return to_html(data) if fmt == "html" else to_markdown(data)


def format_for(path: str, explicit: str | None = None) -> Format:
    """The format asked for, else the file's suffix (``.md``/``.markdown`` → Markdown), else HTML."""
    if explicit:
        return "md" if explicit in ("md", "markdown") else explicit  # type: ignore[return-value]
    return "md" if str(path).lower().endswith((".md", ".markdown")) else "html"
