"""Wave specs: typed models, safe YAML loading, errors that name file, field and reason."""

from include.slow_injection.spec.errors import SpecError
from include.slow_injection.spec.loader import LoadResult, load_wave, load_waves, parse_wave, waves_dir
from include.slow_injection.spec.models import DriverRef, HealthCheckSpec, MetricGate, Service, TrafficStep, Wave

__all__ = [
    "DriverRef",
    "HealthCheckSpec",
    "LoadResult",
    "MetricGate",
    "Service",
    "SpecError",
    "TrafficStep",
    "Wave",
    "load_wave",
    "load_waves",
    "parse_wave",
    "waves_dir",
]
