-- A year of a province's back office, set-based (bench/admin_pages.py --build runs it after migrate and
-- seed_demo, on an empty database): orders with their events, payments, ledger entries, refunds, entitlements;
-- subscriptions with their events and reminders; work items; a reconciliation run a day with its items,
-- statements and discrepancies; stored notifications, SMS confirmations, the outbox, admin's history.
-- :orders and :subscriptions are set by the caller (psql -v, or substituted).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
SET work_mem = '64MB';

CREATE TEMP TABLE k AS SELECT
    :orders::bigint AS n,
    :subscriptions::bigint AS subs,
    date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' - interval '365 days' AS t0;

-- 60 business halls, a clerk in each.
INSERT INTO channels_crm_store (code, name)
SELECT 'NX-' || lpad(i::text, 3, '0'), '营业厅 ' || i FROM generate_series(2, 60) i;
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT '!', false, 'crm-bench' || i, '', '', '', false, true, now() FROM generate_series(2, 60) i;
INSERT INTO channels_crm_clerk (user_id, staff_id, name, store_id, virtual_staff_id, role)
SELECT u.id, 'S' || substr(u.username, 10), '营业员 ' || substr(u.username, 10), s.id, 'V' || substr(u.username, 10), 'clerk'
FROM auth_user u JOIN channels_crm_store s ON s.code = 'NX-' || lpad(substr(u.username, 10), 3, '0')
WHERE u.username LIKE 'crm-bench%';

-- Subscriptions over the year: 70 % active, 15 % cancelled, 5 % lapsed, 10 % ended.
INSERT INTO orders_subscription (
    id, subscription_no, tv_account, phone, status, payment_method, renewal_price_fen, periods, current_period_end,
    next_reminder_at, reminder_sent_at, next_renewal_at, renewal_moved, consent_channel, consent_method, consent_at,
    consent_evidence, contract_id, cancelled_at, cancel_channel, cancel_reason, ended_at, smp_unsubscribed_at,
    due_at, attempts, created_at, updated_at, product_id)
SELECT s, 'SB' || lpad(s::text, 12, '0'), 'tv' || lpad((s * 9 % 2000000)::text, 7, '0'),
    '13' || lpad((s * 7919 % 1000000000)::text, 9, '0'),
    st, (ARRAY['phone_bill', 'wechat_qr', 'alipay_qr', 'phone_bill_sms'])[1 + s % 4],
    (ARRAY[2500, 6800, 24800])[1 + s % 3], 1 + (365 - age) / 30,
    CASE WHEN st = 'ended' THEN t0 + (365 - age) * interval '1 day' + interval '30 days'
         ELSE now() + (s % 30) * interval '1 day' END,
    CASE WHEN st = 'active' THEN now() + (s % 30 - 6) * interval '1 day' END, NULL,
    CASE WHEN st = 'active' THEN now() + (s % 30 - 1) * interval '1 day' END, false,
    (ARRAY['epg', 'crm'])[1 + s % 2], (ARRAY['phone_bill', 'wechat_qr', 'alipay_qr', 'phone_bill_sms'])[1 + s % 4],
    created, '{"order_no": "bench"}'::jsonb, '',
    CASE WHEN st IN ('cancelled', 'ended') THEN created + interval '3 days' END,
    CASE WHEN st IN ('cancelled', 'ended') THEN (ARRAY['epg', 'sms', 'crm', 'admin', 'provider'])[1 + s % 5] ELSE '' END,
    '', CASE WHEN st = 'ended' THEN created + interval '30 days' END, NULL,
    CASE WHEN st = 'active' THEN now() + (s % 30 - 6) * interval '1 day' END, 0, created, created,
    2 + s % 3
FROM (
    SELECT s, (SELECT t0 FROM k) AS t0, 365 - (s * 365 / (SELECT subs FROM k))::int AS age,
        (SELECT t0 FROM k) + (s::float8 / (SELECT subs FROM k)) * interval '365 days' AS created,
        CASE WHEN s % 20 < 14 THEN 'active' WHEN s % 20 < 17 THEN 'cancelled' WHEN s % 20 < 18 THEN 'lapsed'
             ELSE 'ended' END AS st
    FROM generate_series(1, (SELECT subs FROM k)) s
) x;
SELECT setval(pg_get_serial_sequence('orders_subscription', 'id'), (SELECT max(id) FROM orders_subscription));

-- Orders: 55 % TV, 30 % business halls, 15 % renewals; spread evenly over the year, in time order.
CREATE TEMP TABLE o AS
SELECT g, created, ch, prod, st,
    CASE WHEN st = 'rejected' THEN ''
         WHEN st = 'cancelled' AND h4 % 2 = 0 THEN ''
         WHEN ch = 'renewal' THEN (ARRAY['phone_bill', 'wechat_qr', 'alipay_qr', 'phone_bill_sms'])[1 + sub % 4]
         WHEN ch = 'crm' THEN (ARRAY['cash', 'payment_code', 'wechat_qr', 'alipay_qr'])[1 + h4 % 4]
         ELSE (ARRAY['phone_bill', 'phone_bill_sms', 'wechat_qr', 'alipay_qr'])[1 + h4 % 4] END AS method,
    sub, h4, h5
FROM (
    SELECT g, created, ch, st, h4, h5,
        CASE WHEN ch = 'renewal' THEN 1 + g % (SELECT subs FROM k) END AS sub,
        CASE WHEN ch = 'renewal' THEN 2 + (1 + g % (SELECT subs FROM k)) % 3
             WHEN h2 < 40 THEN 1 WHEN h2 < 75 THEN 2 WHEN h2 < 90 THEN 3 ELSE 4 END AS prod
    FROM (
        SELECT g, created, h2, h4, h5,
            CASE WHEN h1 < 55 THEN 'epg' WHEN h1 < 85 THEN 'crm' ELSE 'renewal' END AS ch,
            CASE WHEN created > now() - interval '20 minutes' AND h3 % 4 = 0 THEN 'awaiting_payment'
                 WHEN created > now() - interval '20 minutes' AND h3 % 4 = 1 THEN 'payment_pending'
                 WHEN h3 < 74 THEN 'completed' WHEN h3 < 80 THEN 'expired' WHEN h3 < 84 THEN 'rejected'
                 WHEN h3 < 89 THEN 'cancelled' WHEN h3 < 95 THEN 'failed' WHEN h3 < 98 THEN 'refunded'
                 ELSE 'expired' END AS st
        FROM (
            SELECT g,
                (SELECT t0 FROM k) + (g::float8 / (SELECT n FROM k)) * (now() - (SELECT t0 FROM k)) AS created,
                abs(hashint8extended(g, 1)) % 100 AS h1, abs(hashint8extended(g, 2)) % 100 AS h2,
                abs(hashint8extended(g, 3)) % 100 AS h3, abs(hashint8extended(g, 4)) AS h4,
                abs(hashint8extended(g, 5)) AS h5
            FROM generate_series(1, (SELECT n FROM k)) g
        ) a
    ) b
) c;
-- Renewals never stay in flight (one per subscription at most).
UPDATE o SET st = 'failed' WHERE ch = 'renewal' AND st NOT IN ('completed', 'failed', 'refunded', 'expired');
UPDATE o SET st = 'failed' WHERE ch = 'renewal' AND st = 'expired' AND method = '';
UPDATE o SET method = 'phone_bill' WHERE ch = 'renewal' AND method = '';

INSERT INTO orders_order (
    id, order_no, channel, tv_account, phone, content_id, amount_fen, status, payment_method, failure_code,
    failure_detail, deadline_at, status_changed_at, attempts, origin_kind, origin_id, store_code, created_at,
    updated_at, clerk_id, product_id, auto_renew, renewal_period, subscription_id, pin_pending, virtual_staff_id)
SELECT g,
    to_char(created AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDDHH24MISS') || substr(md5(g::text), 1, 10),
    ch,
    CASE WHEN sub IS NOT NULL THEN 'tv' || lpad((sub * 9 % 2000000)::text, 7, '0')
         ELSE 'tv' || lpad((h5 % 2000000)::text, 7, '0') END,
    CASE WHEN sub IS NOT NULL THEN '13' || lpad((sub * 7919 % 1000000000)::text, 9, '0')
         ELSE '13' || lpad((h5 % 1000000000)::text, 9, '0') END,
    CASE WHEN prod = 1 THEN 'MOVIE-' || (h4 % 500) ELSE '' END,
    (ARRAY[500, 2500, 6800, 24800])[prod], st, method,
    CASE st WHEN 'expired' THEN 'payment_timeout'
            WHEN 'rejected' THEN (ARRAY['account_not_found', 'account_in_arrears', 'account_suspended'])[1 + h4 % 3]
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'failed' THEN (ARRAY['insufficient_balance', 'payment_declined', 'sms_timeout'])[1 + h4 % 3]
            ELSE '' END,
    '', CASE WHEN st IN ('awaiting_payment', 'payment_pending') THEN created + interval '15 minutes' END,
    created + interval '1 minute', 0,
    CASE ch WHEN 'epg' THEN 'epg_client' WHEN 'crm' THEN 'clerk' ELSE 'system' END,
    CASE ch WHEN 'epg' THEN 'bench-epg' WHEN 'crm' THEN 'S' || (2 + h4 % 59) ELSE '' END,
    CASE WHEN ch = 'crm' THEN 'NX-' || lpad((2 + h4 % 59)::text, 3, '0') ELSE '' END,
    created, created + interval '1 minute',
    CASE WHEN ch = 'crm' THEN (SELECT id FROM auth_user WHERE username = 'crm-bench' || (2 + h4 % 59)) END,
    prod, ch = 'epg' AND prod > 1 AND h4 % 20 = 0,
    CASE WHEN sub IS NOT NULL THEN 2 + g / (SELECT subs FROM k) END, sub, false, ''
FROM o;
SELECT setval(pg_get_serial_sequence('orders_order', 'id'), (SELECT max(id) FROM orders_order));

-- Payments: every order that chose a method.
INSERT INTO billing_payment (id, method, provider, out_trade_no, amount_fen, status, qr_code_url, expires_at,
    provider_txn_id, paid_at, failure_reason, created_at, updated_at, order_id, reverse_sent_at)
SELECT r.id, r.payment_method, p.provider, r.order_no, r.amount_fen,
    CASE WHEN r.status IN ('completed', 'refunded') THEN 'paid' WHEN r.status = 'failed' THEN 'failed'
         WHEN r.status IN ('awaiting_payment', 'payment_pending') THEN 'pending' ELSE 'closed' END,
    '', r.created_at + interval '15 minutes',
    CASE WHEN r.status IN ('completed', 'refunded') THEN
        CASE p.provider WHEN 'wechatpay' THEN '4200' || lpad(r.id::text, 24, '0')
                        WHEN 'alipay' THEN '2026' || lpad(r.id::text, 24, '0')
                        ELSE 'SMP' || r.id END ELSE '' END,
    CASE WHEN r.status IN ('completed', 'refunded') THEN r.created_at + interval '1 minute' END,
    '', r.created_at + interval '30 seconds', r.created_at + interval '1 minute', r.id, NULL
FROM orders_order r
CROSS JOIN LATERAL (SELECT CASE
    WHEN r.payment_method = 'wechat_qr' THEN 'wechatpay' WHEN r.payment_method = 'alipay_qr' THEN 'alipay'
    WHEN r.payment_method = 'payment_code' THEN (ARRAY['wechatpay', 'alipay'])[1 + r.id % 2]
    WHEN r.payment_method = 'cash' THEN 'crm' ELSE 'smp' END AS provider) p
WHERE r.payment_method <> '';
SELECT setval(pg_get_serial_sequence('billing_payment', 'id'), (SELECT max(id) FROM billing_payment));

-- The ledger: a payment entry for each paid order, a refund (reversal, cash payback) for each refunded one.
INSERT INTO billing_ledgerentry (kind, amount_fen, method, provider, provider_ref, idempotency_key, actor_kind,
    actor_id, note, created_at, order_id, payment_id)
SELECT 'payment', p.amount_fen, p.method, p.provider, p.provider_txn_id, 'pay:' || p.out_trade_no, 'provider', '',
    '', p.paid_at, p.order_id, p.id
FROM billing_payment p WHERE p.status = 'paid'
ORDER BY p.id;
INSERT INTO billing_ledgerentry (kind, amount_fen, method, provider, provider_ref, idempotency_key, actor_kind,
    actor_id, note, created_at, order_id, payment_id)
SELECT CASE p.provider WHEN 'smp' THEN 'reversal' WHEN 'crm' THEN 'cash_payback' ELSE 'refund' END,
    -p.amount_fen, p.method, p.provider, 'R' || p.id, 'refund:' || p.out_trade_no, 'admin', 'admin', 'refund by admin',
    p.paid_at + interval '2 days', p.order_id, p.id
FROM billing_payment p JOIN orders_order r ON r.id = p.order_id WHERE r.status = 'refunded'
ORDER BY p.paid_at + interval '2 days';
INSERT INTO billing_refund (provider, out_refund_no, amount_fen, reason, status, provider_refund_id, attempts,
    last_error, requested_by_kind, requested_by_id, created_at, updated_at, completed_at, order_id, payment_id)
SELECT p.provider, 'RF' || p.out_trade_no, p.amount_fen, 'refund by admin', 'succeeded', 'PR' || p.id, 1, '',
    'admin', 'admin', p.paid_at + interval '2 days', p.paid_at + interval '2 days', p.paid_at + interval '2 days',
    p.order_id, p.id
FROM billing_payment p JOIN orders_order r ON r.id = p.order_id
WHERE r.status = 'refunded' AND p.provider IN ('wechatpay', 'alipay');

-- Entitlements of the completed (and refunded: revoked) orders.
INSERT INTO orders_entitlement (id, tv_account, product_code, kind, content_id, starts_at, ends_at,
    smp_subscription_id, revoked_at, created_at, order_id, product_id)
SELECT r.id, r.tv_account, pr.code, pr.kind, r.content_id, r.created_at + interval '2 minutes',
    r.created_at + interval '2 minutes' + CASE pr.kind WHEN 'per_view' THEN interval '48 hours'
        WHEN 'monthly' THEN interval '30 days' WHEN 'quarterly' THEN interval '90 days' ELSE interval '365 days' END,
    'SUB' || r.id, CASE WHEN r.status = 'refunded' THEN r.created_at + interval '2 days' END,
    r.created_at + interval '2 minutes', r.id, r.product_id
FROM orders_order r JOIN orders_product pr ON pr.id = r.product_id
WHERE r.status IN ('completed', 'refunded');
SELECT setval(pg_get_serial_sequence('orders_entitlement', 'id'), (SELECT max(id) FROM orders_entitlement));

-- Events: each order's path to its status.
CREATE TEMP TABLE steps (status text, n int, from_status text, to_status text, action text);
INSERT INTO steps VALUES
    ('completed', 1, '', 'prechecking', 'create'), ('completed', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('completed', 3, 'awaiting_payment', 'payment_pending', 'start_payment'),
    ('completed', 4, 'payment_pending', 'provisioning', 'payment_confirmed'),
    ('completed', 5, 'provisioning', 'completed', 'complete'),
    ('refunded', 1, '', 'prechecking', 'create'), ('refunded', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('refunded', 3, 'awaiting_payment', 'payment_pending', 'start_payment'),
    ('refunded', 4, 'payment_pending', 'provisioning', 'payment_confirmed'),
    ('refunded', 5, 'provisioning', 'completed', 'complete'),
    ('refunded', 6, 'completed', 'completed', 'refund_requested'), ('refunded', 7, 'completed', 'refunded', 'refunded'),
    ('expired', 1, '', 'prechecking', 'create'), ('expired', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('expired', 3, 'awaiting_payment', 'expired', 'expire'),
    ('rejected', 1, '', 'prechecking', 'create'), ('rejected', 2, 'prechecking', 'rejected', 'reject'),
    ('cancelled', 1, '', 'prechecking', 'create'), ('cancelled', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('cancelled', 3, 'awaiting_payment', 'cancelled', 'cancel'),
    ('failed', 1, '', 'prechecking', 'create'), ('failed', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('failed', 3, 'awaiting_payment', 'payment_pending', 'start_payment'),
    ('failed', 4, 'payment_pending', 'failed', 'fail'),
    ('awaiting_payment', 1, '', 'prechecking', 'create'),
    ('awaiting_payment', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('payment_pending', 1, '', 'prechecking', 'create'),
    ('payment_pending', 2, 'prechecking', 'awaiting_payment', 'precheck_passed'),
    ('payment_pending', 3, 'awaiting_payment', 'payment_pending', 'start_payment');
INSERT INTO orders_orderevent (at, from_status, to_status, action, actor_kind, actor_id, reason, data, order_id)
SELECT r.created_at + s.n * interval '10 seconds', s.from_status, s.to_status, s.action,
    CASE WHEN s.n = 1 THEN r.origin_kind ELSE 'task' END, '', '', '{}'::jsonb, r.id
FROM orders_order r JOIN steps s ON s.status = r.status
ORDER BY r.id, s.n;
-- One order with a long history (a payment code queried for a long time, refunds retried): 600 events.
INSERT INTO orders_orderevent (at, from_status, to_status, action, actor_kind, actor_id, reason, data, order_id)
SELECT r.created_at + i * interval '5 seconds', 'payment_pending', 'payment_pending', 'retry', 'task', '',
    'the provider did not answer', '{}'::jsonb, r.id
FROM orders_order r, generate_series(1, 600) i WHERE r.id = (SELECT n / 2 FROM k);

-- Subscription events and reminders.
INSERT INTO orders_subscriptionevent (at, from_status, to_status, action, actor_kind, actor_id, reason, data,
    subscription_id)
SELECT created_at, '', 'active', 'start', 'system', '', '', '{}'::jsonb, id FROM orders_subscription
UNION ALL
SELECT cancelled_at, 'active', 'cancelled', 'cancel', 'system', '', '', '{}'::jsonb, id FROM orders_subscription
WHERE cancelled_at IS NOT NULL
UNION ALL
SELECT created_at + interval '35 days', 'active', 'lapsed', 'lapse', 'system', '', '', '{}'::jsonb, id
FROM orders_subscription WHERE status = 'lapsed'
UNION ALL
SELECT ended_at, 'cancelled', 'ended', 'end', 'system', '', '', '{}'::jsonb, id FROM orders_subscription
WHERE ended_at IS NOT NULL;
INSERT INTO orders_subscriptionnotice (kind, period, phone, text, created_at, sent_at, gateway_message_id, attempts,
    gave_up_at, subscription_id, tried_at)
SELECT 'reminder', periods, phone, 'Your subscription renews soon', next_reminder_at - interval '30 days',
    next_reminder_at - interval '30 days', 'GW' || id, 1, NULL, id, next_reminder_at - interval '30 days'
FROM orders_subscription WHERE status = 'active';

-- Work items: one in 200 orders, a tenth still open.
INSERT INTO billing_workitem (kind, detail, created_at, resolved_at, resolved_by, resolution, order_id)
SELECT (ARRAY['refund_failed', 'provisioning_uncertain', 'provider_disagrees', 'crm_uncertain', 'cash_payback'])[1 + r.id % 5],
    'bench', r.created_at + interval '1 hour',
    CASE WHEN r.id % 2000 >= 200 THEN r.created_at + interval '1 day' END,
    CASE WHEN r.id % 2000 >= 200 THEN 'admin:admin' ELSE '' END,
    CASE WHEN r.id % 2000 >= 200 THEN 'resolved' ELSE '' END, r.id
FROM orders_order r WHERE r.id % 200 = 0;

-- SMS confirmations of the phone-bill-with-SMS orders, stored notifications of the QR and code payments.
INSERT INTO billing_smsconfirmation (phone, text, status, sent_at, reply_text, replied_at, created_at, order_id,
    expires_at, gateway_message_id)
SELECT r.phone, 'Reply Y to confirm', CASE WHEN r.status IN ('completed', 'refunded') THEN 'confirmed' ELSE 'expired' END,
    r.created_at + interval '20 seconds', CASE WHEN r.status IN ('completed', 'refunded') THEN 'Y' ELSE '' END,
    CASE WHEN r.status IN ('completed', 'refunded') THEN r.created_at + interval '1 minute' END,
    r.created_at + interval '15 seconds', r.id, r.created_at + interval '10 minutes', 'GW' || r.id
FROM orders_order r WHERE r.payment_method = 'phone_bill_sms' AND r.status NOT IN ('awaiting_payment', 'payment_pending');
INSERT INTO billing_paymentnotification (provider, notification_id, out_trade_no, headers, body, decoded, received_at,
    outcome, payment_id, contract_id)
SELECT p.provider, 'N' || p.id, p.out_trade_no, '{}'::jsonb, repeat('x', 400), '{}'::jsonb,
    p.paid_at, 'applied', p.id, NULL
FROM billing_payment p WHERE p.status = 'paid' AND p.provider IN ('wechatpay', 'alipay');

-- Reconciliation: a run a day, three statements a day, an item and a statement line per paid payment.
INSERT INTO billing_reconciliationrun (day, started_at, finished_at, triggered_by, matched, missing_at_provider,
    missing_here, amount_differs, paid_not_provisioned, provisioned_not_paid, notes, alipay_state, duplicate,
    provisioned_differs, revoked_not_unsubscribed, smp_state, unsubscribed_not_revoked, wechatpay_state)
SELECT d::date, d + interval '1 day 3 hours', d + interval '1 day 3 hours 2 minutes', 'beat', 0, 0, 0, 0, 0, 0, '',
    'compared', 0, 0, 0, 'compared', 0, 'compared'
FROM generate_series((SELECT t0 FROM k) AT TIME ZONE 'Asia/Shanghai',
                     (now() AT TIME ZONE 'Asia/Shanghai') - interval '1 day', interval '1 day') d;
INSERT INTO billing_statement (source, day, sha256, file_name, size_bytes, row_count, imported_at, imported_by)
SELECT src, r.day, md5(src || r.day) || md5(r.day || src), src || '-' || r.day || '.csv', 100000, 1000,
    r.started_at, 'beat'
FROM billing_reconciliationrun r, unnest(ARRAY['wechatpay', 'alipay', 'smp']) src;
INSERT INTO billing_reconciliationrun_statements (reconciliationrun_id, statement_id)
SELECT r.id, s.id FROM billing_reconciliationrun r JOIN billing_statement s ON s.day = r.day;
INSERT INTO billing_statementline (line_no, kind, match_key, out_trade_no, transaction_id, out_refund_no, refund_id,
    amount_fen, charge, occurred_at, raw, statement_id, product_code, tv_account)
SELECT row_number() OVER (PARTITION BY s.id ORDER BY p.id), 'payment', p.out_trade_no, p.out_trade_no,
    p.provider_txn_id, '', '', p.amount_fen, CASE WHEN p.provider = 'smp' THEN 'phone_bill' ELSE '' END, p.paid_at,
    p.out_trade_no || ',' || p.amount_fen, s.id, '', ''
FROM billing_payment p
JOIN billing_statement s ON s.day = (p.paid_at AT TIME ZONE 'Asia/Shanghai')::date
    AND s.source = CASE WHEN p.provider = 'crm' THEN 'smp' ELSE p.provider END
WHERE p.status = 'paid';
INSERT INTO billing_reconciliationitem (outcome, source, kind, order_no, reference, our_amount_fen, their_amount_fen,
    statement_line_no, run_id, explanation, paired_day)
SELECT CASE WHEN p.id % 997 = 0 THEN 'amount_differs' WHEN p.id % 1499 = 0 THEN 'missing_at_provider'
            ELSE 'matched' END,
    CASE WHEN p.provider = 'crm' THEN 'smp' ELSE p.provider END, 'payment', p.out_trade_no, p.provider_txn_id,
    p.amount_fen, CASE WHEN p.id % 1499 = 0 THEN NULL WHEN p.id % 997 = 0 THEN p.amount_fen - 1 ELSE p.amount_fen END,
    NULL, r.id, NULL, NULL
FROM billing_payment p
JOIN billing_reconciliationrun r ON r.day = (p.paid_at AT TIME ZONE 'Asia/Shanghai')::date
WHERE p.status = 'paid'
ORDER BY r.id, p.id;
INSERT INTO billing_discrepancy (day, source, kind, outcome, order_no, reference, our_amount_fen, their_amount_fen,
    statement_line_no, explanation, status, opened_at, last_seen_at, seen_in_run, closed_at, closed_by, resolution,
    last_note)
SELECT r.day, i.source, i.kind, i.outcome, i.order_no, i.reference, i.our_amount_fen, i.their_amount_fen, NULL, NULL,
    CASE WHEN i.id % 10 = 0 THEN 'open' ELSE 'resolved' END, r.finished_at, r.finished_at, r.id,
    CASE WHEN i.id % 10 = 0 THEN NULL ELSE r.finished_at + interval '1 day' END,
    CASE WHEN i.id % 10 = 0 THEN '' ELSE 'admin:admin' END, CASE WHEN i.id % 10 = 0 THEN '' ELSE 'checked' END, ''
FROM billing_reconciliationitem i JOIN billing_reconciliationrun r ON r.id = i.run_id WHERE i.outcome <> 'matched';
INSERT INTO billing_discrepancyevent (at, action, actor_kind, actor_id, note, discrepancy_id)
SELECT opened_at, 'opened', 'system', '', 'beat', id FROM billing_discrepancy
UNION ALL
SELECT closed_at, 'resolved', 'admin', 'admin', 'checked', id FROM billing_discrepancy WHERE closed_at IS NOT NULL;
UPDATE billing_reconciliationrun r SET matched = c.matched, amount_differs = c.differs, missing_at_provider = c.missing
FROM (SELECT run_id, count(*) FILTER (WHERE outcome = 'matched') AS matched,
        count(*) FILTER (WHERE outcome = 'amount_differs') AS differs,
        count(*) FILTER (WHERE outcome = 'missing_at_provider') AS missing
      FROM billing_reconciliationitem GROUP BY run_id) c
WHERE c.run_id = r.id;

-- The outbox: about three messages an order, all relayed.
INSERT INTO ipvas_outboxmessage (task_name, kwargs, due_at, created_at, relayed_at, awaits_finish, again)
SELECT (ARRAY['lifecycle.tasks.precheck', 'lifecycle.tasks.provision', 'lifecycle.tasks.notify_sms',
              'lifecycle.tasks.payment_due', 'lifecycle.tasks.crm_activity'])[1 + i % 5],
    jsonb_build_object('order_id', i / 3), (SELECT t0 FROM k) + (i::float8 / (3 * (SELECT n FROM k))) * interval '365 days',
    (SELECT t0 FROM k) + (i::float8 / (3 * (SELECT n FROM k))) * interval '365 days',
    (SELECT t0 FROM k) + (i::float8 / (3 * (SELECT n FROM k))) * interval '365 days' + interval '1 second', false, 0
FROM generate_series(1, 3 * (SELECT n FROM k)) i;

-- Admin's history: 20,000 changes.
INSERT INTO django_admin_log (action_time, object_id, object_repr, action_flag, change_message, content_type_id, user_id)
SELECT (SELECT t0 FROM k) + i * interval '25 minutes', (i * 50)::text, 'order ' || i, 2,
    '[{"why": "bench"}]', (SELECT id FROM django_content_type WHERE app_label = 'orders' AND model = 'order'),
    (SELECT id FROM auth_user WHERE username = 'admin')
FROM generate_series(1, 20000) i;

VACUUM ANALYZE;
