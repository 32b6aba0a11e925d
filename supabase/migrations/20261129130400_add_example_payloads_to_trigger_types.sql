-- The event catalogue shows each trigger type with an example of the body its endpoints
-- receive. The example lives on the type's row, next to its description, so adding a type
-- is still one insert (plus the code that emits it);
-- supabase/tests/portal/trigger-type-examples.test.sql fails when an example stops having
-- the shape of what the emitting code really sends.
alter table public.webhook_trigger_types add column example_payload jsonb;
comment on column public.webhook_trigger_types.example_payload is
  'An example of the JSON body POSTed for this type (illustrative values, real shape).';

update public.webhook_trigger_types t
   set example_payload = e.payload
  from (values
    ('PROCESS_CREATED', $json${
      "type": "PROCESS_CREATED",
      "timestamp": "2026-11-26T16:40:14.123456Z",
      "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
      "data": {
        "process_id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84",
        "revision": 1,
        "process": {
          "id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84", "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
          "name": "Final assembly", "type": "PRODUCTION", "revision": 1, "revision_description": null,
          "use_api": false, "record_operator": true, "is_mandatory": true, "break_prior_links": false,
          "allow_batch": false, "show_media_numbering": false, "dependent_process_ids": [],
          "approved": false, "approved_by_user_id": null, "approved_at": null,
          "created_by_user_id": "b7d2e0f4-1a9c-4e35-8c6b-2f4a7d9e1c05",
          "created_at": "2026-11-26T16:40:14.123456+00:00", "updated_at": "2026-11-26T16:40:14.123456+00:00"
        }
      }
    }$json$::jsonb),
    ('PROCESS_REVISED', $json${
      "type": "PROCESS_REVISED",
      "timestamp": "2026-11-27T09:12:03.456789Z",
      "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
      "data": {
        "process_id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84",
        "revision": 2,
        "previous_revision": 1,
        "changed_fields": ["name", "revision_description"],
        "process": {
          "id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84", "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
          "name": "Final assembly and test", "type": "PRODUCTION", "revision": 2, "revision_description": "Adds the end-of-line test",
          "use_api": false, "record_operator": true, "is_mandatory": true, "break_prior_links": false,
          "allow_batch": false, "show_media_numbering": false, "dependent_process_ids": [],
          "approved": false, "approved_by_user_id": null, "approved_at": null,
          "created_by_user_id": "b7d2e0f4-1a9c-4e35-8c6b-2f4a7d9e1c05",
          "created_at": "2026-11-26T16:40:14.123456+00:00", "updated_at": "2026-11-27T09:12:03.456789+00:00"
        },
        "previous": {
          "id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84", "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
          "name": "Final assembly", "type": "PRODUCTION", "revision": 1, "revision_description": null,
          "use_api": false, "record_operator": true, "is_mandatory": true, "break_prior_links": false,
          "allow_batch": false, "show_media_numbering": false, "dependent_process_ids": [],
          "approved": true, "approved_by_user_id": "b7d2e0f4-1a9c-4e35-8c6b-2f4a7d9e1c05", "approved_at": "2026-11-26T17:02:41.000000+00:00",
          "created_by_user_id": "b7d2e0f4-1a9c-4e35-8c6b-2f4a7d9e1c05",
          "created_at": "2026-11-26T16:40:14.123456+00:00", "updated_at": "2026-11-26T17:02:41.000000+00:00"
        }
      }
    }$json$::jsonb),
    ('PROCESS_DELETED', $json${
      "type": "PROCESS_DELETED",
      "timestamp": "2026-11-28T11:30:00.000001Z",
      "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
      "data": {
        "process_id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84",
        "revision": 2,
        "process": {
          "id": "0c9e41d7-8b2a-4f63-a5c1-7d3e9f0b2a84", "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
          "name": "Final assembly and test", "type": "PRODUCTION", "revision": 2, "revision_description": "Adds the end-of-line test",
          "use_api": false, "record_operator": true, "is_mandatory": true, "break_prior_links": false,
          "allow_batch": false, "show_media_numbering": false, "dependent_process_ids": [],
          "approved": false, "approved_by_user_id": null, "approved_at": null,
          "created_by_user_id": "b7d2e0f4-1a9c-4e35-8c6b-2f4a7d9e1c05",
          "created_at": "2026-11-26T16:40:14.123456+00:00", "updated_at": "2026-11-27T09:12:03.456789+00:00"
        }
      }
    }$json$::jsonb),
    ('WEBHOOK_TEST', $json${
      "type": "WEBHOOK_TEST",
      "timestamp": "2026-11-29T08:00:00.000000Z",
      "company_id": "6c1f8a52-3d0e-4b7a-9f21-5e8d0c4b1a37",
      "data": {
        "webhook_id": "3a7f2c91-6e4d-4b8a-b0c5-1d9e8f7a6b52",
        "subscribed_trigger_type": "PROCESS_REVISED",
        "message": "Test event sent from Serial"
      }
    }$json$::jsonb)
  ) as e(name, payload)
 where t.name = e.name;
