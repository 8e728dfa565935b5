"""`/metrics`: the gateway's counters in the Prometheus text format (prometheus_client)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .queue import Queue

CONTENT_TYPE = CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600)
"""Seconds from receipt to delivery: no bucket more than 1.5 times the last past 10 s, so that a
quantile read from them (Prometheus interpolates within a bucket) is off by at most a third."""


class Metrics:
    """One registry per gateway (tests run several in one process)."""

    def __init__(self, queue: Queue) -> None:
        self.registry = r = CollectorRegistry()
        self.received = Counter("sr2fhir_received", "Reports accepted and stored, by input path.", ["source"], registry=r)
        self.duplicates = Counter("sr2fhir_duplicates", "Reports received again, identical to one already queued.", ["source"], registry=r)
        self.refused = Counter("sr2fhir_refused", "Objects refused at intake, by reason.", ["source", "reason"], registry=r)
        self.converted = Counter("sr2fhir_converted", "Reports converted to FHIR.", registry=r)
        self.delivered = Counter("sr2fhir_delivered", "Reports delivered to the FHIR server.", registry=r)
        self.dead_lettered = Counter("sr2fhir_dead_lettered", "Reports put in the dead letter (see `sr2fhir queue list --state dead`).", registry=r)
        self.retries = Counter("sr2fhir_delivery_retries", "Delivery attempts that failed and were scheduled again.", registry=r)
        self.latency = Histogram(
            "sr2fhir_delivery_latency_seconds", "From receipt to delivery.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        depth = Gauge("sr2fhir_queue_depth", "Reports by state.", ["state"], registry=r)
        for state in ("received", "converted", "delivered", "dead"):
            depth.labels(state).set_function(lambda s=state: queue.counts()[s])  # type: ignore[misc]
        Gauge("sr2fhir_queue_oldest_age_seconds", "Age of the oldest report not yet delivered.", registry=r).set_function(queue.oldest_pending_age)
        self.audit_sent = Counter("sr2fhir_audit_sent", "Audit messages the audit repository took (--audit-syslog).", registry=r)
        self.audit_dropped = Counter("sr2fhir_audit_dropped", "Audit messages dropped: the repository took none while the buffer filled.", registry=r)
        self.paused = Gauge("sr2fhir_delivery_paused", "1 while delivery waits for the FHIR server to come back.", registry=r)

    def text(self) -> bytes:
        return generate_latest(self.registry)
