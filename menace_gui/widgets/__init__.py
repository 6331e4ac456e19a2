"""One widget per module: event_log, score_chart, forms, job_controls, data views, status."""
