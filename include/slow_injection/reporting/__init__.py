"""The run report's HTML side: what is plotted (series.py), the timeline (timeline.py), hand-written
SVG plots (plots.py) and the self-contained page (html.py). Everything here is pure but the range
queries in series.collect_metric_series, which never raise."""
