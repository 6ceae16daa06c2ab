-- Endpoint events: tg_api.events_ingest (batches, replays, partitions),
-- events_partitions and usage_partitions (ahead and retention),
-- endpoint_events_list (admins only, newest first, time bounds, keyset
-- pagination); and the groups' translate and wait_for_cooldown_ms
-- settings.
\pset tuples_only on
\pset format unaligned
\set sys '{"actor": null, "role": "system", "addr": "127.0.0.1", "host": "h0"}'
\set root '{"actor": 1, "role": "admin", "addr": "10.0.0.1", "host": "h1"}'
\set bob '{"actor": 2, "role": "user", "addr": "10.0.0.2", "host": "h2"}'

SELECT tg_api.users_create(:'sys', '{"username": "root", "role": "admin"}')
       ->> 'user_id';
SELECT tg_api.users_create(:'root', '{"username": "bob"}') ->> 'user_id';
SELECT tg_api.endpoints_create(:'root', jsonb_build_object('name', 'relay',
    'url', 'https://a.example', 'style', 'openai',
    'credential_ciphertext', repeat('ee', 40), 'credential_key_id',
    'eeeeeeee')) ->> 'endpoint_id';

-- A batch of three events of "relay" (two months) and one of an endpoint
-- the database does not know.
SELECT tg_api.events_ingest('[
  {"event_id":1,"time_ms":1579000000000,"host":"gw1","endpoint":"relay",
   "endpoint_index":0,"type":"opened","from_state":"closed",
   "to_state":"open","reason":"Couldn''t connect to server","status":1007,
   "consecutive":3,"until_ms":1579000003000,"pid":12610,"source":"worker"},
  {"event_id":2,"time_ms":1579000003000,"host":"gw1","endpoint":"relay",
   "endpoint_index":0,"type":"half_open","from_state":"open",
   "to_state":"half_open","reason":"cooldown over","status":0,
   "consecutive":6,"until_ms":null,"pid":12609,"source":"worker"},
  {"event_id":3,"time_ms":1581000000000,"host":"gw1","endpoint":"relay",
   "endpoint_index":0,"type":"closed","from_state":"half_open",
   "to_state":"closed","reason":"probe request answered","status":200,
   "consecutive":0,"until_ms":null,"pid":12609,"source":"worker"},
  {"event_id":4,"time_ms":1581000000001,"host":"gw1","endpoint":"gone",
   "endpoint_index":1,"type":"health","from_state":"unknown",
   "to_state":"healthy","reason":"health check: status 200","status":200,
   "consecutive":0,"until_ms":null,"pid":1,"source":"health"}]');
-- Replayed: nothing new.
SELECT tg_api.events_ingest('[
  {"event_id":1,"time_ms":1579000000000,"host":"gw1","endpoint":"relay",
   "endpoint_index":0,"type":"opened","from_state":"closed",
   "to_state":"open","reason":"x","status":1007,"consecutive":3,
   "until_ms":1579000003000,"pid":12610,"source":"worker"}]');
-- Not an array; a bad type.
SELECT tg_api.events_ingest('{}');
SELECT tg_api.events_ingest('[{"event_id":9,"time_ms":1579000000000,
   "host":"gw1","endpoint":"relay","endpoint_index":0,"type":"exploded",
   "from_state":"closed","to_state":"open","reason":"","status":0,
   "consecutive":0,"until_ms":null,"pid":1,"source":"worker"}]');
SELECT endpoint, endpoint_id, type, until_at IS NOT NULL
  FROM endpoint_events ORDER BY at;
SELECT c.relname FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
 WHERE h.inhparent = 'endpoint_events'::regclass ORDER BY 1;

-- The list: newest first, two per page, then the rest.
SELECT tg_api.endpoint_events_list(:'root', '{"endpoint_id": 1, "limit": 2}');
SELECT tg_api.endpoint_events_list(:'root',
    '{"endpoint_id": 1, "limit": 2, "cursor": "2"}');
-- Time bounds: from inclusive, to exclusive.
SELECT jsonb_path_query_array(tg_api.endpoint_events_list(:'root',
    '{"endpoint_id": 1, "from": "2020-01-14T11:06:43Z",
      "to": "2020-02-06T14:40:00Z"}'), '$.items[*].type');
-- Refusals: a user, an unknown endpoint, a cursor of another endpoint.
SELECT tg_api.endpoint_events_list(:'bob', '{"endpoint_id": 1}');
SELECT tg_api.endpoint_events_list(:'root', '{"endpoint_id": 99}');
SELECT tg_api.endpoint_events_list(:'root',
    '{"endpoint_id": 1, "cursor": "4"}');

-- Partitions: this month's and the next are created; with retention 1,
-- the old months go, their events with them.
SELECT jsonb_array_length(tg_api.events_partitions(0) -> 'created');
SELECT tg_api.events_partitions(0) -> 'created';
SELECT tg_api.events_partitions(1) -> 'dropped';
SELECT count(*) FROM endpoint_events;
-- usage_requests has the same upkeep; no other table is partitioned so.
SELECT jsonb_array_length(tg_api.usage_partitions(0) -> 'created');
SELECT tg_api.usage_partitions(0) -> 'created';
CREATE TABLE usage_requests_201901 PARTITION OF usage_requests
    FOR VALUES FROM ('2019-01-01 00:00Z') TO ('2019-02-01 00:00Z');
SELECT tg_api.usage_partitions(1) -> 'dropped';
SELECT count(*) FROM pg_inherits
 WHERE inhparent = 'usage_requests'::regclass;
SELECT tg_api._month_partitions('users', 0);
SELECT tg_api._month_partition('users; DROP TABLE users', now());

-- Groups: translate and wait_for_cooldown_ms.
SELECT tg_api.groups_create(:'root', '{"name": "strict", "translate": false,
    "wait_for_cooldown_ms": 1500}') - 'created_at' - 'updated_at';
SELECT tg_api.groups_update(:'root', '{"group_id": 2, "translate": true}')
       ->> 'translate';
SELECT tg_api.groups_update(:'root', '{"group_id": 2,
    "wait_for_cooldown_ms": 60001}');
SELECT tg_api.groups_update(:'root', '{"group_id": 2, "translate": "no"}');
SELECT translate, wait_for_cooldown_ms FROM endpoint_groups WHERE group_id = 2;
