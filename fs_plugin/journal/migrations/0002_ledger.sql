-- The regulator's desk: the ledger (台账) of customers, trunks, number resources and
-- contracts; credit records (joint punishment); complaint tickets (12321); and the
-- labels complaints put on numbers.
--
-- Every write to a table whose content reaches the screening snapshot (customers,
-- credit, labels; trunks, numbers and contracts for the ledger's own queries) sends
-- NOTIFY on channel ``fsp_ledger`` from a statement-level trigger, so a write made by
-- any client (the CLI, the HTTP API, psql) reaches every switch listening. NOTIFY is
-- delivered at commit, and identical payloads within one transaction are folded into
-- one, so a 10,000-row import costs each listener one reload per table.

CREATE TABLE ledger_customer (
    id              text        PRIMARY KEY,
    name            text        NOT NULL DEFAULT '',
    -- 统一社会信用代码 (GB 32100): 18 characters.
    credit_code     text        NOT NULL DEFAULT '',
    -- Qualification / licence (e.g. 增值电信业务经营许可证 or 呼叫中心业务许可) and validity.
    licence         text        NOT NULL DEFAULT '',
    licence_from    date,
    licence_until   date,
    industry        text        NOT NULL DEFAULT 'other',
    business_type   text        NOT NULL DEFAULT 'other',
    contact_name    text        NOT NULL DEFAULT '',
    contact_phone   text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'suspended', 'terminated')),
    note            text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (licence_from IS NULL OR licence_until IS NULL OR licence_from <= licence_until)
);

-- Foreign keys are deferred to commit: an import loads whole files in one transaction
-- and must not depend on the order of their rows or sections.
CREATE TABLE ledger_trunk (
    id              text        PRIMARY KEY,
    customer        text        NOT NULL REFERENCES ledger_customer (id)
                                DEFERRABLE INITIALLY DEFERRED,
    location        text        NOT NULL DEFAULT '',
    purpose         text        NOT NULL DEFAULT '',
    sources         text        NOT NULL DEFAULT '',
    note            text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_trunk_customer_idx ON ledger_trunk (customer);

-- A number resource: one number or an inclusive range LOW-HIGH of one kind.
CREATE TABLE ledger_number (
    resource        text        PRIMARY KEY,
    low             text        NOT NULL,
    high            text        NOT NULL,
    kind            text        NOT NULL,
    customer        text        NOT NULL REFERENCES ledger_customer (id)
                                DEFERRABLE INITIALLY DEFERRED,
    business_name   text        NOT NULL DEFAULT '',
    purpose         text        NOT NULL DEFAULT '',
    note            text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_number_customer_idx ON ledger_number (customer);
CREATE INDEX ledger_number_range_idx ON ledger_number (low, high);

CREATE TABLE ledger_contract (
    customer        text        PRIMARY KEY REFERENCES ledger_customer (id)
                                DEFERRABLE INITIALLY DEFERRED,
    reference       text        NOT NULL DEFAULT '',
    caps            text        NOT NULL DEFAULT '',
    hours           text        NOT NULL DEFAULT '',
    targets         text        NOT NULL DEFAULT '',
    valid_from      date,
    valid_until     date,
    note            text        NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Credit records are an append-only history: a blacklisting is lifted by a later
-- record, never by deleting the first, so the regulator can see both. No foreign key:
-- a customer known only to the YAML policy can be punished too.
CREATE TABLE ledger_credit (
    id              bigserial   PRIMARY KEY,
    customer        text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    kind            text        NOT NULL CHECK (kind IN ('violation', 'blacklist', 'lift')),
    rule            text,
    trunk           text,
    source          text        NOT NULL CHECK (source IN ('auto', 'manual')),
    note            text        NOT NULL DEFAULT '',
    -- Automatic records carry a key that makes a re-run of the same scan a no-op.
    dedupe          text        UNIQUE
);
CREATE INDEX ledger_credit_customer_idx ON ledger_credit (customer, recorded_at);

CREATE TABLE complaint (
    id              bigserial   PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    -- Only ever the masked form: the reporter's number is personal data the desk
    -- does not need to handle the complaint.
    reporter        text        NOT NULL DEFAULT '',
    reported_raw    text        NOT NULL,
    reported_key    text        NOT NULL,
    category        text        NOT NULL,
    channel         text        NOT NULL,
    body            text        NOT NULL DEFAULT '',
    status          text        NOT NULL DEFAULT 'received'
                    CHECK (status IN ('received', 'verified', 'actioned', 'answered')),
    answer          text        NOT NULL DEFAULT '',
    due_at          timestamptz NOT NULL,
    verified_at     timestamptz,
    actioned_at     timestamptz,
    answered_at     timestamptz,
    -- The hotline's own ticket number, when the complaint came from a file: a re-import
    -- of the same file adds nothing.
    external_ref    text        UNIQUE
);
CREATE INDEX complaint_reported_idx ON complaint (reported_key, received_at);
CREATE INDEX complaint_received_idx ON complaint (received_at);
CREATE INDEX complaint_open_idx ON complaint (due_at) WHERE status <> 'answered';

CREATE TABLE ledger_label (
    key             text        PRIMARY KEY,
    number          text        NOT NULL,
    category        text        NOT NULL,
    label           text        NOT NULL DEFAULT '',
    source          text        NOT NULL DEFAULT '12321',
    confidence      real        NOT NULL DEFAULT 1.0,
    complaints      integer     NOT NULL DEFAULT 0,
    labelled_at     timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz
);

CREATE FUNCTION fsp_ledger_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fsp_ledger', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_customer_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_customer FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
CREATE TRIGGER ledger_trunk_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_trunk FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
CREATE TRIGGER ledger_number_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_number FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
CREATE TRIGGER ledger_contract_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_contract FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
CREATE TRIGGER ledger_credit_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_credit FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
CREATE TRIGGER ledger_label_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ledger_label FOR EACH STATEMENT EXECUTE FUNCTION fsp_ledger_notify();
