-- The call journal: one row per screening decision and one per call outcome.
--
-- Both tables are range-partitioned by day on their time column so that retention
-- is a DROP of whole partitions (no DELETE, no vacuum debt); the daily partitions
-- themselves are created by the journal (today + N days ahead, and on demand for
-- the days a batch touches), not here.
--
-- The primary keys include the time column because a unique constraint on a
-- partitioned table must contain the partition key; they are also what makes a
-- spool replay after a crash duplicate-free (INSERT ... ON CONFLICT DO NOTHING).

CREATE TABLE journal_decision (
    decided_at      timestamptz      NOT NULL,
    switch          text             NOT NULL,
    uuid            text             NOT NULL,
    trunk           text,
    customer        text,
    from_raw        text,
    from_norm       text,
    pai_raw         text,
    pai_norm        text,
    diversion_raw   text,
    diversion_norm  text,
    callee          text,
    caller_name     text,
    sip_call_id     text,
    network_ip      text,
    verdict         text             NOT NULL,
    rule            text,
    cause           text,
    sip_status      integer,
    reason          text             NOT NULL DEFAULT '',
    label           text,
    trail           jsonb            NOT NULL DEFAULT '[]'::jsonb,
    shadow_hits     text[]           NOT NULL DEFAULT '{}',
    policy_version  text             NOT NULL DEFAULT '',
    fallback        boolean          NOT NULL DEFAULT false,
    latency_ms      double precision,
    PRIMARY KEY (uuid, switch, decided_at)
) PARTITION BY RANGE (decided_at);

-- Tracing looks a number up on either side of the call, or by trunk / customer,
-- always within a time range (which also prunes partitions).
CREATE INDEX journal_decision_from_idx ON journal_decision (from_norm, decided_at);
CREATE INDEX journal_decision_pai_idx ON journal_decision (pai_norm, decided_at);
CREATE INDEX journal_decision_callee_idx ON journal_decision (callee, decided_at);
CREATE INDEX journal_decision_trunk_idx ON journal_decision (trunk, decided_at);
CREATE INDEX journal_decision_customer_idx ON journal_decision (customer, decided_at);

CREATE TABLE journal_outcome (
    ended_at        timestamptz      NOT NULL,
    switch          text             NOT NULL,
    uuid            text             NOT NULL,
    hangup_cause    text             NOT NULL DEFAULT '',
    disposition     text,
    answered        boolean          NOT NULL DEFAULT false,
    ring_time_s     double precision,
    duration_s      double precision NOT NULL DEFAULT 0,
    billsec         integer          NOT NULL DEFAULT 0,
    from_user       text,
    callee          text,
    trunk           text,
    PRIMARY KEY (uuid, switch, ended_at)
) PARTITION BY RANGE (ended_at);
