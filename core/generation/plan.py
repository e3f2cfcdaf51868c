"""What a run will do before it starts: the plan (labels × facet values × models × count per cell),
its cells, the checks on it, and the token and cost estimate.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from core.generation import connections as conns
from core.generation import prices
from core.generation.context import fit_warning
from core.generation.prompts import Slot, build_messages, cell_examples, facet_combinations
from db.generation import calls as call_q
from db.generation import connections as conn_q
from db.projects import Project

# Observations the paper generated per label × gender cell (7 criteria × 3 genders × 200 = 4,200).
PAPER_PER_CELL = 200
DEFAULT_TOKENS_PER_OBSERVATION = 45  # a one- or two-sentence observation plus its JSON quoting
CHARS_PER_TOKEN = 4  # rough, for estimates before anything is sent


@dataclass
class Plan:
    labels: list[str]
    facets: dict[str, list[str]]  # facet name -> the values to generate for
    models: list[dict]  # [{"connection_id": 1, "model": "gpt-4o-mini"}]
    per_cell: int = 10  # observations per label × facet values × model
    per_call: int = 5  # observations asked for in one call (one cell)

    def combos(self, project: Project) -> list[dict]:
        return facet_combinations(project, self.facets)

    def calls_per_combo(self) -> int:
        return math.ceil(self.per_cell / self.per_call) if self.per_cell > 0 else 0


@dataclass
class RunConfig:
    """Everything a run needs besides the plan; stored with the run exactly as it ran."""

    temperature: float = 1.0
    max_tokens: int | None = None  # default: enough for per_call observations
    n_examples: int = 0  # few-shot examples from the real train split per call
    seed: int = 0
    max_attempts: int = 4  # our own tries per cell, each with the SDK's retries inside
    sdk_max_retries: int = 2
    retry_base_s: float = 1.0  # our backoff: base × 2^(attempt-1), with jitter; Retry-After wins
    concurrency: dict = field(default_factory=dict)  # connection id (str) -> override of max concurrency
    max_cost_usd: float | None = None  # the run's budget; None: no cap (or the price is unknown)
    max_topup_calls: int = 5  # extra calls per label × facet values × model to reach the planned count
    breaker_after: int = 20  # failures of one kind in a row that stop the run
    mode: str = "live"  # 'live' calls, or 'batch': a batch API job at batch prices
    batch_poll_s: float = 30.0  # how often the worker asks whether a batch is done
    batch_max_requests: int = 50_000  # OpenAI's limits per batch input file: larger runs are split
    batch_max_bytes: int = 200 * 1024 * 1024

    def tokens_for(self, n: int) -> int:
        return self.max_tokens or 80 + 90 * n


def paper_plan(project: Project, models: list[dict]) -> Plan:
    """The paper's plan: every label × every facet value × 200 observations (7 × 3 × 200 = 4,200 for autism)."""
    return Plan(
        labels=project.label_codes,
        facets={f.name: list(f.values) for f in project.facets},
        models=models,
        per_cell=PAPER_PER_CELL,
        per_call=10,
    )


def plan_cells(project: Project, plan: Plan) -> list[dict]:
    cells = []
    for choice in plan.models:
        for label in plan.labels:
            for facets in plan.combos(project):
                for index in range(plan.calls_per_combo()):
                    n = min(plan.per_call, plan.per_cell - index * plan.per_call)
                    cells.append(
                        {
                            "label_code": label,
                            "facets_json": json.dumps(facets, sort_keys=True),
                            "connection_id": int(choice["connection_id"]),
                            "model": choice["model"],
                            "cell_index": index,
                            "n": n,
                        }
                    )
    return cells


def validate_plan(db, project: Project, plan: Plan) -> list[str]:
    problems = []
    unknown = [code for code in plan.labels if code not in project.label_codes]
    if not plan.labels:
        problems.append("Labels: choose at least one label.")
    if unknown:
        problems.append(f"Labels: {', '.join(unknown)} are not labels of {project.name!r}.")
    facet_values = {f.name: f.values for f in project.facets}
    for name, values in plan.facets.items():
        if name not in facet_values:
            problems.append(f"Facets: {project.name!r} has no facet {name!r}.")
        elif not values:
            problems.append(f"Facets: choose at least one value of {name!r}.")
        elif bad := [v for v in values if v not in facet_values[name]]:
            problems.append(f"Facets: {', '.join(bad)} are not values of {name!r}.")
    if not plan.models:
        problems.append("Models: choose at least one model.")
    for choice in plan.models:
        row = conn_q.get_connection(db, int(choice["connection_id"]))
        if row is None:
            problems.append(f"Models: connection {choice['connection_id']} no longer exists.")
    if plan.per_cell < 1:
        problems.append("Observations per cell: must be at least 1.")
    if plan.per_call < 1:
        problems.append("Observations per call: must be at least 1.")
    return problems


# ---------------------------------------------------------------- estimate


@dataclass
class Estimate:
    calls: int
    observations: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None when a model's price is unknown
    rows: list[dict]  # per model
    warnings: list[str] = field(default_factory=list)  # e.g. a prompt that cannot fit the model's context

    def as_text(self) -> str:
        return (
            f"{self.calls:,} calls for {self.observations:,} observations · about {self.tokens_in:,} input and "
            f"{self.tokens_out:,} output tokens · {cost_text(self.cost_usd)}"
        )

    @property
    def unknown_prices(self) -> list[str]:
        return [f"{r['connection']} · {r['model']}" for r in self.rows if r["cost_usd"] is None]


def cost_text(amount: float | None) -> str:
    return (
        "cost unknown (no price for this model: set one on the LLM connections page)"
        if amount is None
        else (f"about {format_usd(amount)}")
    )


def format_usd(amount: float) -> str:
    """Dollars with enough digits to tell small amounts apart ($0.0012, $0.12, $1,234.56)."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.2g}" if abs(amount) >= 1e-6 else "<$0.000001"


def approx_tokens(messages: list[dict]) -> int:
    return sum(len(m["content"]) // CHARS_PER_TOKEN + 4 for m in messages)


def worst_case_prompt_tokens(messages: list[dict]) -> int:
    """A prompt's tokens counted high (for budget reservations): 2 characters per token."""
    return sum(len(m["content"]) // 2 + 8 for m in messages)


def estimate(db, project: Project, version: dict, plan: Plan, config: RunConfig) -> Estimate:
    """Calls, tokens and cost before starting: prompts rendered for real, answers sized from earlier calls."""
    rows, combos, warnings = [], plan.combos(project), []
    calls_per_combo = plan.calls_per_combo()
    for choice in plan.models:
        conn = conns.get_connection(db, int(choice["connection_id"]))
        prompt_tokens = longest_prompt = 0
        for label in plan.labels:
            for facets in combos:
                examples = cell_examples(
                    db, project.id, label, facets, choice["model"], 0, config.n_examples, config.seed
                )
                slot = Slot(label, facets, plan.per_call, examples)
                tokens = approx_tokens(build_messages(version["system"], version["user"], project, slot))
                prompt_tokens += tokens
                longest_prompt = max(longest_prompt, tokens)
        calls = calls_per_combo * len(plan.labels) * len(combos)
        observations = plan.per_cell * len(plan.labels) * len(combos)
        per_obs = call_q.mean_tokens_out_per_observation(db, choice["model"]) or DEFAULT_TOKENS_PER_OBSERVATION
        tokens_in = prompt_tokens * calls_per_combo
        tokens_out = round(observations * per_obs + calls * 10)
        price = prices.price_for(db, conn, choice["model"])
        warning = fit_warning(choice["model"], longest_prompt, round(plan.per_call * per_obs + 10))
        if warning:
            warnings.append(warning)
        rows.append(
            {
                "connection": conn.name,
                "model": choice["model"],
                "calls": calls,
                "observations": observations,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost_usd": prices.cost_or_none(price, tokens_in, tokens_out, batch=config.mode == "batch"),
                "batch_cost_usd": prices.cost_or_none(price, tokens_in, tokens_out, batch=True),
                "price": price.source if price else "unknown",
            }
        )
    return Estimate(
        calls=sum(r["calls"] for r in rows),
        observations=sum(r["observations"] for r in rows),
        tokens_in=sum(r["tokens_in"] for r in rows),
        tokens_out=sum(r["tokens_out"] for r in rows),
        cost_usd=None if any(r["cost_usd"] is None for r in rows) else sum(r["cost_usd"] for r in rows),
        rows=rows,
        warnings=warnings,
    )
