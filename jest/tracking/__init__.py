"""Run records: metrics.jsonl (jest.tracking.metrics), the ID card and the MLflow mirror
(jest.tracking.records), the MLflow store, its rebuild from the run folders, and its UI."""
