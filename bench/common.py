"""The one output format every benchmark uses."""


def report(name: str, value: float, unit: str, baseline: float, baseline_unit: str | None = None, ratio=None) -> str:
    """Print `BENCH <name>: ratio=<r> value=<v> <unit> baseline=<b> <unit>` and return it.

    The ratio defaults to value / baseline; pass `ratio` where the issue defines it the other way round.
    """
    if ratio is None:
        ratio = value / baseline if baseline else float("nan")
    line = f"BENCH {name}: ratio={ratio:.3f} value={value:.4g} {unit} baseline={baseline:.4g} {baseline_unit or unit}"
    print(line, flush=True)
    return line
