"""initial schema: accounts, people, catalogue, orders, visits, outbox, idempotency, audit

On PostgreSQL, enables btree_gist and adds the EXCLUDE constraint that keeps a caregiver's
visits from overlapping (DESIGN.md invariant 2); on SQLite the serialized write transaction
checks it. The service catalogue is reference data and is seeded here.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:02:20.557113
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SERVICES = [
    # code, name, required skills, default duration (min), price (fen)
    ("meal_delivery", "Meal delivery", [], 30, 2500),
    ("cleaning", "Home cleaning", ["housekeeping"], 120, 8000),
    ("bathing", "Bathing assistance", ["bathing"], 60, 12000),
    ("personal_care", "Personal care", ["personal_care"], 60, 9000),
    ("nursing_visit", "Nurse visit", ["nursing"], 45, 15000),
    ("medication_help", "Medication help", ["medication"], 30, 5000),
    ("hospital_escort", "Escort to hospital", ["escort"], 180, 18000),
    ("rehabilitation", "Rehabilitation exercise", ["rehabilitation"], 60, 14000),
    ("companionship", "Companionship", [], 90, 6000),
    ("emergency_help", "Emergency help", ["first_aid"], 60, 0),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "district",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_district")),
        sa.UniqueConstraint("code", name=op.f("uq_district_code")),
    )
    op.create_table(
        "service",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("required_skills", sa.JSON(), nullable=False),
        sa.Column("default_duration_min", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("default_duration_min > 0", name=op.f("ck_service_duration_positive")),
        sa.CheckConstraint("price_fen >= 0", name=op.f("ck_service_price_not_negative")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_service")),
    )
    op.create_table(
        "account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "senior",
                "caregiver",
                "provider",
                "operator",
                "admin",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("district_id", sa.Uuid(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
            name=op.f("fk_account_district_id_district"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("login", name=op.f("uq_account_login")),
    )
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_district_id"), ["district_id"], unique=False)

    op.create_table(
        "idempotency_key",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_idempotency_key_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "key", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_key_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "provider",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("district_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("api_key_prefix", sa.String(length=16), nullable=False),
        sa.Column("auto_accept", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
            name=op.f("fk_provider_district_id_district"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["account.id"], name=op.f("fk_provider_id_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_provider_api_key_hash")),
    )
    with op.batch_alter_table("provider", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_district_id"), ["district_id"], unique=False)

    op.create_table(
        "senior",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("district_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column(
            "gender",
            sa.Enum(
                "female",
                "male",
                "other",
                name="gender",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("neighbourhood", sa.String(length=120), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column(
            "preferred_gender",
            sa.Enum(
                "female",
                "male",
                "other",
                name="preferred_gender",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("gender_strict", sa.Boolean(), nullable=False),
        sa.Column("care_notes", sa.Text(), nullable=False),
        sa.Column("emergency_contacts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("ck_senior_lat_range")),
        sa.CheckConstraint("lon BETWEEN -180 AND 180", name=op.f("ck_senior_lon_range")),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
            name=op.f("fk_senior_district_id_district"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["id"], ["account.id"], name=op.f("fk_senior_id_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_senior")),
        sa.UniqueConstraint("phone", name=op.f("uq_senior_phone")),
    )
    with op.batch_alter_table("senior", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_senior_district_id"), ["district_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("senior_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.String(length=255), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["account.id"],
            name=op.f("fk_audit_log_actor_id_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["senior_id"],
            ["senior.id"],
            name=op.f("fk_audit_log_senior_id_senior"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_log_senior_id_at"), ["senior_id", "at"], unique=False
        )

    op.create_table(
        "caregiver",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column(
            "gender",
            sa.Enum(
                "female",
                "male",
                "other",
                name="gender",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("service_radius_m", sa.Integer(), nullable=False),
        sa.Column("daily_visit_cap", sa.Integer(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("position_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("rating_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "lat IS NULL OR lat BETWEEN -90 AND 90", name=op.f("ck_caregiver_lat_range")
        ),
        sa.CheckConstraint(
            "lon IS NULL OR lon BETWEEN -180 AND 180", name=op.f("ck_caregiver_lon_range")
        ),
        sa.CheckConstraint("service_radius_m > 0", name=op.f("ck_caregiver_radius_positive")),
        sa.ForeignKeyConstraint(
            ["id"], ["account.id"], name=op.f("fk_caregiver_id_account"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider.id"],
            name=op.f("fk_caregiver_provider_id_provider"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caregiver")),
    )
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_caregiver_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "care_order",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("senior_id", sa.Uuid(), nullable=False),
        sa.Column("district_id", sa.Uuid(), nullable=False),
        sa.Column("service_code", sa.String(length=40), nullable=False),
        sa.Column(
            "priority",
            sa.Enum(
                "normal",
                "urgent",
                "emergency",
                name="priority",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "offered",
                "assigned",
                "in_progress",
                "completed",
                "escalated",
                "cancelled",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("asap", sa.Boolean(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("caregiver_id", sa.Uuid(), nullable=True),
        sa.Column("redispatch_count", sa.Integer(), nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("escalation_reason", sa.Text(), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("duration_min > 0", name=op.f("ck_care_order_duration_positive")),
        sa.CheckConstraint(
            "rating IS NULL OR rating BETWEEN 1 AND 5", name=op.f("ck_care_order_rating_range")
        ),
        sa.CheckConstraint(
            "window_end IS NULL OR window_start IS NULL OR window_end > window_start",
            name=op.f("ck_care_order_window_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregiver.id"],
            name=op.f("fk_care_order_caregiver_id_caregiver"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["account.id"],
            name=op.f("fk_care_order_created_by_account"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["district_id"],
            ["district.id"],
            name=op.f("fk_care_order_district_id_district"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["senior_id"],
            ["senior.id"],
            name=op.f("fk_care_order_senior_id_senior"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["service_code"],
            ["service.code"],
            name=op.f("fk_care_order_service_code_service"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_order")),
    )
    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_order_caregiver_id_status"),
            ["caregiver_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_care_order_district_id_status"), ["district_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_care_order_senior_id_created_at"),
            ["senior_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "caregiver_preference",
        sa.Column("senior_id", sa.Uuid(), nullable=False),
        sa.Column("caregiver_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "preferred",
                "blocked",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregiver.id"],
            name=op.f("fk_caregiver_preference_caregiver_id_caregiver"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["senior_id"],
            ["senior.id"],
            name=op.f("fk_caregiver_preference_senior_id_senior"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("senior_id", "caregiver_id", name=op.f("pk_caregiver_preference")),
    )
    with op.batch_alter_table("caregiver_preference", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_caregiver_preference_caregiver_id"), ["caregiver_id"], unique=False
        )

    op.create_table(
        "caregiver_skill",
        sa.Column("caregiver_id", sa.Uuid(), nullable=False),
        sa.Column("skill", sa.String(length=40), nullable=False),
        sa.Column("certificate_expires_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregiver.id"],
            name=op.f("fk_caregiver_skill_caregiver_id_caregiver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("caregiver_id", "skill", name=op.f("pk_caregiver_skill")),
    )
    op.create_table(
        "shift",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("caregiver_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_shift_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregiver.id"],
            name=op.f("fk_shift_caregiver_id_caregiver"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shift")),
    )
    with op.batch_alter_table("shift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shift_caregiver_id"), ["caregiver_id"], unique=False)

    op.create_table(
        "order_status_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["account.id"],
            name=op.f("fk_order_status_history_actor_id_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["care_order.id"],
            name=op.f("fk_order_status_history_order_id_care_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_history")),
    )
    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_status_history_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "outbox_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("senior_id", sa.Uuid(), nullable=True),
        sa.Column("caregiver_id", sa.Uuid(), nullable=True),
        sa.Column("provider_id", sa.Uuid(), nullable=True),
        sa.Column("district_id", sa.Uuid(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["care_order.id"],
            name=op.f("fk_outbox_event_order_id_care_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_event_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_event_published_at_id"), ["published_at", "id"], unique=False
        )

    op.create_table(
        "visit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("caregiver_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "assigned",
                "in_progress",
                "completed",
                "withdrawn",
                "reassigned",
                "cancelled",
                "no_show",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_in_lat", sa.Float(), nullable=True),
        sa.Column("check_in_lon", sa.Float(), nullable=True),
        sa.Column("check_in_distance_m", sa.Float(), nullable=True),
        sa.Column("check_in_override_reason", sa.Text(), nullable=True),
        sa.Column("checked_in_by", sa.Uuid(), nullable=True),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_duration_min", sa.Integer(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("ends_at >= starts_at", name=op.f("ck_visit_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["account.id"],
            name=op.f("fk_visit_assigned_by_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["caregiver_id"],
            ["caregiver.id"],
            name=op.f("fk_visit_caregiver_id_caregiver"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["checked_in_by"],
            ["account.id"],
            name=op.f("fk_visit_checked_in_by_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["care_order.id"],
            name=op.f("fk_visit_order_id_care_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit")),
    )
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_visit_caregiver_id_starts_at"),
            ["caregiver_id", "starts_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_visit_order_id"), ["order_id"], unique=False)
        batch_op.create_index(
            "uq_visit_active_order",
            ["order_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('assigned', 'in_progress', 'completed')"),
            sqlite_where=sa.text("status IN ('assigned', 'in_progress', 'completed')"),
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE visit ADD CONSTRAINT ex_visit_caregiver_overlap "
            "EXCLUDE USING gist (caregiver_id WITH =, tstzrange(starts_at, ends_at) WITH &&) "
            "WHERE (status IN ('assigned', 'in_progress', 'completed'))"
        )

    service = sa.table(
        "service",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("required_skills", sa.JSON),
        sa.column("default_duration_min", sa.Integer),
        sa.column("price_fen", sa.Integer),
        sa.column("active", sa.Boolean),
    )
    op.bulk_insert(
        service,
        [
            {
                "code": code,
                "name": name,
                "description": "",
                "required_skills": skills,
                "default_duration_min": minutes,
                "price_fen": fen,
                "active": True,
            }
            for code, name, skills, minutes, fen in SERVICES
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("visit", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_visit_active_order",
            postgresql_where=sa.text("status IN ('assigned', 'in_progress', 'completed')"),
            sqlite_where=sa.text("status IN ('assigned', 'in_progress', 'completed')"),
        )
        batch_op.drop_index(batch_op.f("ix_visit_order_id"))
        batch_op.drop_index(batch_op.f("ix_visit_caregiver_id_starts_at"))

    op.drop_table("visit")
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_event_published_at_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_event_order_id"))

    op.drop_table("outbox_event")
    with op.batch_alter_table("order_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_status_history_order_id"))

    op.drop_table("order_status_history")
    with op.batch_alter_table("shift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shift_caregiver_id"))

    op.drop_table("shift")
    op.drop_table("caregiver_skill")
    with op.batch_alter_table("caregiver_preference", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caregiver_preference_caregiver_id"))

    op.drop_table("caregiver_preference")
    with op.batch_alter_table("care_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_order_senior_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_care_order_district_id_status"))
        batch_op.drop_index(batch_op.f("ix_care_order_caregiver_id_status"))

    op.drop_table("care_order")
    with op.batch_alter_table("caregiver", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_caregiver_provider_id"))

    op.drop_table("caregiver")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_senior_id_at"))

    op.drop_table("audit_log")
    with op.batch_alter_table("senior", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_senior_district_id"))

    op.drop_table("senior")
    with op.batch_alter_table("provider", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_district_id"))

    op.drop_table("provider")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_expires_at"))

    op.drop_table("idempotency_key")
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_district_id"))

    op.drop_table("account")
    op.drop_table("service")
    op.drop_table("district")
