"""report.md and a self-contained report.html from the summary (analysis.summary, as JSON).

The HTML embeds every figure as a base64 PNG (it opens anywhere, from e-mail
or CI artifacts); the Markdown links the PNGs next to it. Both show the same
tables: claims with verdicts, headline speedups, parity per metric, selected
composition, runs and provenance.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2


def fmt(x, spec: str = ".4g") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return format(x, spec)
    return str(x)


def speedup(sp: dict | None) -> str:
    """'1.85x [1.60, 2.10]'; bounds as '< 1.00x (not reached)' / '>= 8.00x (at first eval)'."""
    if not sp or sp.get("value") is None:
        return "n/a"
    v = sp["value"]
    head = {"upper": f"< {v:.2f}x (not reached)", "lower": f">= {v:.2f}x (at first eval)"}.get(sp.get("bound"),
                                                                                                 f"{v:.2f}x")
    lo, hi = sp.get("ci_low"), sp.get("ci_high")
    if lo is None or hi is None or abs(lo - v) + abs(hi - v) < 1e-12:
        return head  # no CI, or a degenerate one (identical seeds; every replicate unreached)
    lo_s = f"<{lo:.2f}" if sp.get("ci_low_censored") else f"{lo:.2f}"
    hi_s = f">{hi:.2f}" if sp.get("ci_high_censored") else f"{hi:.2f}"
    return f"{head} [{lo_s}, {hi_s}]"


def differs(d: dict | None) -> str:
    """{"selector": {"ablation": "topk", "headline": "joint"}} -> 'selector = topk (headline: joint)'."""
    if not d:
        return "nothing (same settings)"
    return "; ".join(f"{k} = {v['ablation']} (headline: {v['headline']})" for k, v in d.items())


def _env(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             autoescape=autoescape)
    env.filters.update(fmt=fmt, speedup=speedup, differs=differs,
                       tojson_pretty=lambda x: json.dumps(x, indent=2, sort_keys=True))
    return env


MARKDOWN = """\
# JEST parity report: config `{{ s.config.name }}`

Does JEST reach the uniform baseline's final {{ s.primary_metric.label }} in fewer iterations and FLOPs?
Parity rule: {{ s.parity_settings.rule }} crossing, smoothing {{ s.parity_settings.smooth }};
{{ (100 * s.parity_settings.ci_level) | fmt('.0f') }}% percentile bootstrap over seeds
({{ s.parity_settings.n_boot }} replicates, seed {{ s.parity_settings.boot_seed }}).

## Claims

A verdict is about the setting here (causal language models at this scale), not about the paper's
image-text result.

| claim | paper's setting | setting here | measured here (best arm) | verdict | why |
|---|---|---|---|---|---|
{% for c in s.claims %}
| {{ c.claim }}{% if c.accounting %} (FLOPs: {{ c.accounting }}){% endif %} | {{ c.paper_setting }} | {{ c.setting_here }} | {{ c.measured | speedup }}{% if c.best_arm %} ({{ c.best_arm }}){% endif %} | **{{ c.verdict }}** | {{ c.reason }} |
{% endfor %}

{% if s.notes %}
## Notes

{% for n in s.notes %}
- {{ n }}
{% endfor %}
{% endif %}

## Headline: {{ s.primary_metric.name }}

Baseline `{{ s.baseline.arm }}`, seeds {{ s.baseline.seeds }}, final step {{ s.baseline.final_step | fmt('.0f') }}.

| arm | filter ratio | seeds | baseline final | arm final | reached (share of bootstrap) | T_j | iterations | FLOPs train | FLOPs train+score | FLOPs total |
|---|---|---|---|---|---|---|---|---|---|---|
{% for h in s.headline %}
| {{ h.arm }} | {{ h.filter_ratio }} | {{ h.seeds }} | {{ h.baseline_final | fmt }} | {{ h.arm_final | fmt }} | {{ h.reached | fmt }} ({{ h.p_reached | fmt('.2f') }}) | {{ h.T_j | fmt('.1f') }} | {{ h.iterations | speedup }} | {{ h.flops.get('train') | speedup }} | {{ h.flops.get('train+score') | speedup }} | {{ h.flops.get('total') | speedup }} |
{% endfor %}

{% if s.ablation_arms %}
## Ablations

{% if s.arm_scope == 'all' %}
Each ablation arm against the same baseline target, set against the headline JEST arm with the same
filter ratio; not part of the claim verdicts.

| arm | set against | what differs | seeds | reached (share of bootstrap) | T_j | iterations | FLOPs train+score | FLOPs total |
|---|---|---|---|---|---|---|---|---|
{% for a in s.ablations %}
| {{ a.arm }} | {{ a.compared_to | fmt }} | {{ a.differs | differs }} | {{ a.seeds }} | {{ a.reached | fmt }} ({{ a.p_reached | fmt('.2f') }}) | {{ a.T_j | fmt('.1f') }} | {{ a.iterations | speedup }} | {{ a.flops.get('train+score') | speedup }} | {{ a.flops.get('total') | speedup }} |
{% endfor %}
{% else %}
Configured ablation arms, not in this report (`snakemake ablations` runs them and writes
`report/ablations/`): {{ s.ablation_arms | join(', ') }}.
{% endif %}

{% endif %}

## Figures

{% for name, f in s.figures.items() %}
![{{ f.caption }}]({{ f.png }})

*{{ f.caption }}* ([SVG]({{ f.svg }}))

{% endfor %}
## Parity on every metric

| metric | arm | target | reached | T_j | iterations | FLOPs train+score |
|---|---|---|---|---|---|---|
{% for m, rs in s.parity.items() %}
{% for r in rs %}
| {{ m }} | {{ r.arm }} | {{ r.target | fmt }} | {{ r.reached | fmt }} | {{ r.T_j | fmt('.1f') }} | {{ r.iterations | speedup }} | {{ r.flops.get('train+score') | speedup }} |
{% endfor %}
{% endfor %}

Per seed, {{ s.primary_metric.name }} (each arm seed against the baseline's mean target):

| arm | seed | reached | T_j | iteration speedup | final |
|---|---|---|---|---|---|
{% for r in s.parity.get(s.primary_metric.name, []) %}
{% for p in r.per_seed %}
| {{ r.arm }} | {{ p.seed }} | {{ p.reached | fmt }} | {{ p.T_j | fmt('.1f') }} | {{ p.iteration_speedup | fmt('.2f') }}{{ '' if p.reached else ' (bound)' }} | {{ p.final | fmt }} |
{% endfor %}
{% endfor %}

## What the arms trained on

{% for kind, comp in s.composition.items() if kind != 'pool_shares_agree' %}
### by {{ kind }}

| arm | label | pool share | selected share | enrichment |
|---|---|---|---|---|
{% for row in comp.selected %}
| {{ row.arm }} | {{ row.label }} | {{ row.pool_share | fmt('.3f') }} | {{ row.selected_share | fmt('.3f') }} | {{ row.enrichment | fmt('.2f') }} |
{% endfor %}

{% endfor %}
## Runs

| run | arm | seed | status | steps | held-out loss | bits/byte | FLOPs total | wall (s) | error |
|---|---|---|---|---|---|---|---|---|---|
{% for r in s.runs %}
| {{ r.run }} | {{ r.arm }} | {{ r.seed }} | {{ r.status }} | {{ r.steps | fmt }} | {{ r.heldout_loss | fmt }} | {{ r.heldout_bpb | fmt }} | {{ r.flops_total | fmt('.3e') }} | {{ r.wall_time_s | fmt('.0f') }} | {{ r.error | fmt }} |
{% endfor %}

{% if s.references %}
## Reference models

| reference | status | steps | parameters | trained on | held-out loss | bits/byte | training FLOPs |
|---|---|---|---|---|---|---|---|
{% for r in s.references %}
| {{ r.name }} | {{ r.status }} | {{ r.steps | fmt }} | {{ r.n_params | fmt(',') }} | {{ r.train_split | fmt }} | {{ r.heldout_loss | fmt }} | {{ r.heldout_bpb | fmt }} | {{ r.flops_train | fmt('.3e') }} |
{% endfor %}

{% endif %}
## Provenance

- git commits: {{ s.provenance.git_commits | join(', ') }}
- runs: {{ s.provenance.n_runs }}, started {{ s.provenance.started | fmt }}, finished {{ s.provenance.finished | fmt }}
- devices: {{ s.provenance.devices | join(', ') }}
- machines: {% for m in s.provenance.machines %}`{{ m | tojson }}` {% endfor %}

- config hash: {{ s.config.config_hash | join(', ') }}
- packages: {% for k, v in s.provenance.packages.items() %}{{ k }} {{ v | join('/') }}{{ ', ' if not loop.last }}{% endfor %}


Summary schema {{ s.schema_version }} (summary.json).
"""

HTML = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>JEST parity report: {{ s.config.name }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.verdict-holds { background: #d9f2d9; } .verdict-does-not-hold { background: #f9d6d5; }
.verdict-inconclusive { background: #fff2cc; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; } pre { background: #f7f7f7; padding: 1em; overflow: auto; }
.notes li { margin: 0.3em 0; }
</style></head><body>
<h1>JEST parity report: config <code>{{ s.config.name }}</code></h1>
<p>Does JEST reach the uniform baseline's final {{ s.primary_metric.label }} in fewer iterations and FLOPs?
Parity rule: {{ s.parity_settings.rule }} crossing, smoothing {{ s.parity_settings.smooth }};
{{ (100 * s.parity_settings.ci_level) | fmt('.0f') }}% percentile bootstrap over seeds
({{ s.parity_settings.n_boot }} replicates, seed {{ s.parity_settings.boot_seed }}).</p>

<h2>Claims</h2>
<p>A verdict is about the setting here (causal language models at this scale), not about the paper's
image-text result.</p>
<table><tr><th>claim</th><th>paper's setting</th><th>setting here</th><th>measured here (best arm)</th>
<th>verdict</th><th>why</th></tr>
{% for c in s.claims %}
<tr><td>{{ c.claim }}{% if c.accounting %} (FLOPs: {{ c.accounting }}){% endif %}</td><td>{{ c.paper_setting }}</td>
<td>{{ c.setting_here }}</td><td>{{ c.measured | speedup }}{% if c.best_arm %} ({{ c.best_arm }}){% endif %}</td>
<td class="verdict-{{ c.verdict | replace(' ', '-') }}"><b>{{ c.verdict }}</b></td><td>{{ c.reason }}</td></tr>
{% endfor %}
</table>

{% if s.notes %}
<h2>Notes</h2><ul class="notes">{% for n in s.notes %}<li>{{ n }}</li>{% endfor %}</ul>
{% endif %}

<h2>Headline: {{ s.primary_metric.name }}</h2>
<p>Baseline <code>{{ s.baseline.arm }}</code>, seeds {{ s.baseline.seeds }},
final step {{ s.baseline.final_step | fmt('.0f') }}.</p>
<table><tr><th>arm</th><th>filter ratio</th><th>seeds</th><th>baseline final</th><th>arm final</th>
<th>reached (share of bootstrap)</th><th>T_j</th><th>iterations</th><th>FLOPs train</th><th>FLOPs train+score</th>
<th>FLOPs total</th></tr>
{% for h in s.headline %}
<tr><td>{{ h.arm }}</td><td>{{ h.filter_ratio }}</td><td>{{ h.seeds }}</td><td>{{ h.baseline_final | fmt }}</td>
<td>{{ h.arm_final | fmt }}</td><td>{{ h.reached | fmt }} ({{ h.p_reached | fmt('.2f') }})</td><td>{{ h.T_j | fmt('.1f') }}</td>
<td>{{ h.iterations | speedup }}</td><td>{{ h.flops.get('train') | speedup }}</td>
<td>{{ h.flops.get('train+score') | speedup }}</td><td>{{ h.flops.get('total') | speedup }}</td></tr>
{% endfor %}
</table>

{% if s.ablation_arms %}
<h2>Ablations</h2>
{% if s.arm_scope == 'all' %}
<p>Each ablation arm against the same baseline target, set against the headline JEST arm with the same
filter ratio; not part of the claim verdicts.</p>
<table><tr><th>arm</th><th>set against</th><th>what differs</th><th>seeds</th><th>reached (share of bootstrap)</th>
<th>T_j</th><th>iterations</th><th>FLOPs train+score</th><th>FLOPs total</th></tr>
{% for a in s.ablations %}
<tr><td>{{ a.arm }}</td><td>{{ a.compared_to | fmt }}</td><td>{{ a.differs | differs }}</td><td>{{ a.seeds }}</td>
<td>{{ a.reached | fmt }} ({{ a.p_reached | fmt('.2f') }})</td><td>{{ a.T_j | fmt('.1f') }}</td>
<td>{{ a.iterations | speedup }}</td><td>{{ a.flops.get('train+score') | speedup }}</td>
<td>{{ a.flops.get('total') | speedup }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>Configured ablation arms, not in this report (<code>snakemake ablations</code> runs them and writes
<code>report/ablations/</code>): {{ s.ablation_arms | join(', ') }}.</p>
{% endif %}
{% endif %}

<h2>Figures</h2>
{% for name, f in s.figures.items() %}
<figure id="fig-{{ name }}"><img alt="{{ f.caption }}" src="data:image/png;base64,{{ images[name] }}">
<figcaption>{{ f.caption }}</figcaption></figure>
{% endfor %}

<h2>Parity on every metric</h2>
<table><tr><th>metric</th><th>arm</th><th>target</th><th>reached</th><th>T_j</th><th>iterations</th>
<th>FLOPs train+score</th></tr>
{% for m, rs in s.parity.items() %}{% for r in rs %}
<tr><td>{{ m }}</td><td>{{ r.arm }}</td><td>{{ r.target | fmt }}</td><td>{{ r.reached | fmt }}</td>
<td>{{ r.T_j | fmt('.1f') }}</td><td>{{ r.iterations | speedup }}</td><td>{{ r.flops.get('train+score') | speedup }}</td></tr>
{% endfor %}{% endfor %}
</table>
<p>Per seed, {{ s.primary_metric.name }} (each arm seed against the baseline's mean target):</p>
<table><tr><th>arm</th><th>seed</th><th>reached</th><th>T_j</th><th>iteration speedup</th><th>final</th></tr>
{% for r in s.parity.get(s.primary_metric.name, []) %}{% for p in r.per_seed %}
<tr><td>{{ r.arm }}</td><td>{{ p.seed }}</td><td>{{ p.reached | fmt }}</td><td>{{ p.T_j | fmt('.1f') }}</td>
<td>{{ p.iteration_speedup | fmt('.2f') }}{{ '' if p.reached else ' (bound)' }}</td><td>{{ p.final | fmt }}</td></tr>
{% endfor %}{% endfor %}
</table>

<h2>What the arms trained on</h2>
{% for kind, comp in s.composition.items() if kind != 'pool_shares_agree' %}
<h3>by {{ kind }}</h3>
<table><tr><th>arm</th><th>label</th><th>pool share</th><th>selected share</th><th>enrichment</th></tr>
{% for row in comp.selected %}
<tr><td>{{ row.arm }}</td><td>{{ row.label }}</td><td>{{ row.pool_share | fmt('.3f') }}</td>
<td>{{ row.selected_share | fmt('.3f') }}</td><td>{{ row.enrichment | fmt('.2f') }}</td></tr>
{% endfor %}
</table>
{% endfor %}

<h2>Runs</h2>
<table><tr><th>run</th><th>arm</th><th>seed</th><th>status</th><th>steps</th><th>held-out loss</th><th>bits/byte</th>
<th>FLOPs total</th><th>wall (s)</th><th>error</th></tr>
{% for r in s.runs %}
<tr><td>{{ r.run }}</td><td>{{ r.arm }}</td><td>{{ r.seed }}</td><td>{{ r.status }}</td><td>{{ r.steps | fmt }}</td>
<td>{{ r.heldout_loss | fmt }}</td><td>{{ r.heldout_bpb | fmt }}</td><td>{{ r.flops_total | fmt('.3e') }}</td>
<td>{{ r.wall_time_s | fmt('.0f') }}</td><td>{{ r.error | fmt }}</td></tr>
{% endfor %}
</table>

{% if s.references %}
<h2>Reference models</h2>
<table><tr><th>reference</th><th>status</th><th>steps</th><th>parameters</th><th>trained on</th>
<th>held-out loss</th><th>bits/byte</th><th>training FLOPs</th></tr>
{% for r in s.references %}
<tr><td>{{ r.name }}</td><td>{{ r.status }}</td><td>{{ r.steps | fmt }}</td><td>{{ r.n_params | fmt(',') }}</td>
<td>{{ r.train_split | fmt }}</td><td>{{ r.heldout_loss | fmt }}</td><td>{{ r.heldout_bpb | fmt }}</td>
<td>{{ r.flops_train | fmt('.3e') }}</td></tr>
{% endfor %}
</table>
{% endif %}
<h2>Provenance</h2>
<ul>
<li>git commits: {{ s.provenance.git_commits | join(', ') }}</li>
<li>runs: {{ s.provenance.n_runs }}, started {{ s.provenance.started | fmt }},
finished {{ s.provenance.finished | fmt }}</li>
<li>devices: {{ s.provenance.devices | join(', ') }}</li>
<li>config hash: {{ s.config.config_hash | join(', ') }}</li>
</ul>
<table><tr><th>package</th><th>version(s)</th></tr>
{% for k, v in s.provenance.packages.items() %}<tr><td>{{ k }}</td><td>{{ v | join(', ') }}</td></tr>{% endfor %}
</table>
<details><summary>machines</summary><pre>{{ s.provenance.machines | tojson_pretty }}</pre></details>
<details><summary>resolved config</summary><pre>{{ s.config.resolved | tojson_pretty }}</pre></details>
<p><small>Summary schema {{ s.schema_version }} (summary.json).</small></p>
</body></html>
"""


def render_markdown(summary: dict) -> str:
    return _env(autoescape=False).from_string(MARKDOWN).render(s=summary)


def render_html(summary: dict, report_dir: Path) -> str:
    """HTML with each figure's PNG (relative to `report_dir`) inlined as base64."""
    images = {name: base64.b64encode((Path(report_dir) / f["png"]).read_bytes()).decode("ascii")
              for name, f in summary["figures"].items()}
    return _env(autoescape=True).from_string(HTML).render(s=summary, images=images)
