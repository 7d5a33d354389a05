# Analysis stage: every finished run -> parity tables with bootstrap CIs, plots, the report
# and summary.json (analysis/report.py; pure functions over the run folders).


rule analyze:
    input:
        runs=all_runs(),
        references=expand(ROOT / "references" / "{ref}" / "card.json", ref=used_references()),
    output:
        summary=ROOT / "report" / "summary.json",
        markdown=ROOT / "report" / "report.md",
        html=report(ROOT / "report" / "report.html", caption="../report/caption.rst", category="Report"),
    params:
        results=results_root(CFG),
        name=CFG["name"],
        out=ROOT / "report",
    conda:
        ENV
    log:
        ROOT / "logs" / "analyze.log",
    shell:
        "python -m analysis.report --results {params.results} --config {params.name} --out {params.out} > {log} 2>&1"
