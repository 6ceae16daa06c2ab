-- sql/views/10_keys.sql
--      key_overview: every API key with its owner, its effective endpoint
--      group and whether a worker would accept it now.
--
-- NOTES
--      Re-applied at every start (CREATE OR REPLACE VIEW); a later change
--      that drops or renames a column needs DROP VIEW in a migration.
--      No secret is exposed: no digest, no password hash.

CREATE OR REPLACE VIEW public.key_overview AS
SELECT k.key_id,
       k.user_id,
       u.username,
       k.name,
       k.prefix,
       k.last4,
       k.status,
       u.status AS user_status,
       k.expires_at,
       k.status = 'active'
           AND coalesce(u.status, 'active') = 'active'
           AND (k.expires_at IS NULL OR k.expires_at > now()) AS usable,
       coalesce(k.group_name, u.group_name, 'default') AS effective_group,
       k.models,
       k.rpm,
       k.burst,
       k.tpm,
       k.concurrency,
       k.managed_by,
       k.created_at,
       k.last_used_at
  FROM public.api_keys k
  LEFT JOIN public.users u ON u.user_id = k.user_id;

COMMENT ON VIEW public.key_overview IS
    'Every API key with its owner, effective endpoint group and whether it '
    'is usable now (active key, active owner, not expired); no secrets';
COMMENT ON COLUMN public.key_overview.key_id IS 'api_keys.key_id';
COMMENT ON COLUMN public.key_overview.user_id IS 'api_keys.user_id';
COMMENT ON COLUMN public.key_overview.username IS
    'users.username of the owner; NULL for a config-file key without user';
COMMENT ON COLUMN public.key_overview.name IS 'api_keys.name';
COMMENT ON COLUMN public.key_overview.prefix IS 'api_keys.prefix';
COMMENT ON COLUMN public.key_overview.last4 IS 'api_keys.last4';
COMMENT ON COLUMN public.key_overview.status IS 'api_keys.status';
COMMENT ON COLUMN public.key_overview.user_status IS 'users.status';
COMMENT ON COLUMN public.key_overview.expires_at IS 'api_keys.expires_at';
COMMENT ON COLUMN public.key_overview.usable IS
    'true when a worker accepts the key now: key and owner active, not '
    'expired';
COMMENT ON COLUMN public.key_overview.effective_group IS
    'the key''s group, else its owner''s, else ''default''';
COMMENT ON COLUMN public.key_overview.models IS 'api_keys.models';
COMMENT ON COLUMN public.key_overview.rpm IS 'api_keys.rpm';
COMMENT ON COLUMN public.key_overview.burst IS 'api_keys.burst';
COMMENT ON COLUMN public.key_overview.tpm IS 'api_keys.tpm';
COMMENT ON COLUMN public.key_overview.concurrency IS 'api_keys.concurrency';
COMMENT ON COLUMN public.key_overview.managed_by IS 'api_keys.managed_by';
COMMENT ON COLUMN public.key_overview.created_at IS 'api_keys.created_at';
COMMENT ON COLUMN public.key_overview.last_used_at IS 'api_keys.last_used_at';
