
export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]

export type Database = {
  
  "public": {
          Tables: {
            "companies": {
                  Row: {
                    "config": NonNullable<Json>,"created_at": string,"id": string,"is_active": boolean,"name": string
                  }
                  ComputedFields: never
                  Insert: {
                    "config"?: NonNullable<Json>,"created_at"?: string,"id"?: string,"is_active"?: boolean,"name": string
                  }
                  Update: {
                    "config"?: NonNullable<Json>,"created_at"?: string,"id"?: string,"is_active"?: boolean,"name"?: string
                  }
                  Relationships: [
                    
                  ]
                },"processes": {
                  Row: {
                    "allow_batch": boolean,"approved": boolean,"approved_at": string | null,"approved_by_user_id": string | null,"break_prior_links": boolean,"carbon_copy": Json | null,"company_id": string,"created_at": string,"created_by_user_id": string | null,"dependent_process_ids": (string)[],"id": string,"is_mandatory": boolean,"name": string,"record_operator": boolean,"revision": number,"revision_description": string | null,"show_media_numbering": boolean,"type": string,"updated_at": string,"use_api": boolean
                  }
                  ComputedFields: never
                  Insert: {
                    "allow_batch"?: boolean,"approved"?: boolean,"approved_at"?: string | null,"approved_by_user_id"?: string | null,"break_prior_links"?: boolean,"carbon_copy"?: Json | null,"company_id": string,"created_at"?: string,"created_by_user_id"?: string | null,"dependent_process_ids"?: (string)[],"id"?: string,"is_mandatory"?: boolean,"name": string,"record_operator"?: boolean,"revision"?: number,"revision_description"?: string | null,"show_media_numbering"?: boolean,"type"?: string,"updated_at"?: string,"use_api"?: boolean
                  }
                  Update: {
                    "allow_batch"?: boolean,"approved"?: boolean,"approved_at"?: string | null,"approved_by_user_id"?: string | null,"break_prior_links"?: boolean,"carbon_copy"?: Json | null,"company_id"?: string,"created_at"?: string,"created_by_user_id"?: string | null,"dependent_process_ids"?: (string)[],"id"?: string,"is_mandatory"?: boolean,"name"?: string,"record_operator"?: boolean,"revision"?: number,"revision_description"?: string | null,"show_media_numbering"?: boolean,"type"?: string,"updated_at"?: string,"use_api"?: boolean
                  }
                  Relationships: [
                    {
      foreignKeyName: "processes_approved_by_user_id_fkey"
      columns: ["approved_by_user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["supabase_uid"]
    },{
      foreignKeyName: "processes_company_id_fkey"
      columns: ["company_id"]
isOneToOne: false
      referencedRelation: "companies"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "processes_created_by_user_id_fkey"
      columns: ["created_by_user_id"]
isOneToOne: false
      referencedRelation: "users"
      referencedColumns: ["supabase_uid"]
    }
                  ]
                },"user_types": {
                  Row: {
                    "description": string,"type": string
                  }
                  ComputedFields: never
                  Insert: {
                    "description": string,"type": string
                  }
                  Update: {
                    "description"?: string,"type"?: string
                  }
                  Relationships: [
                    
                  ]
                },"users": {
                  Row: {
                    "company_id": string | null,"created_at": string,"default_station_id": string | null,"email": string,"first_name": string | null,"is_active": boolean,"last_name": string | null,"role": string,"supabase_uid": string,"title": string | null
                  }
                  ComputedFields: never
                  Insert: {
                    "company_id"?: string | null,"created_at"?: string,"default_station_id"?: string | null,"email": string,"first_name"?: string | null,"is_active"?: boolean,"last_name"?: string | null,"role": string,"supabase_uid": string,"title"?: string | null
                  }
                  Update: {
                    "company_id"?: string | null,"created_at"?: string,"default_station_id"?: string | null,"email"?: string,"first_name"?: string | null,"is_active"?: boolean,"last_name"?: string | null,"role"?: string,"supabase_uid"?: string,"title"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "users_company_id_fkey"
      columns: ["company_id"]
isOneToOne: false
      referencedRelation: "companies"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "users_role_fkey"
      columns: ["role"]
isOneToOne: false
      referencedRelation: "user_types"
      referencedColumns: ["type"]
    }
                  ]
                },"webhook_deliveries": {
                  Row: {
                    "attempt_count": number,"company_id": string,"completed_at": string | null,"created_at": string,"event_id": string,"id": string,"last_attempt_at": string | null,"last_error": string | null,"last_status": number | null,"lease_expires_at": string | null,"lease_owner": string | null,"next_attempt_at": string | null,"ordering_key": string | null,"ordering_seq": number | null,"redelivery_of": string | null,"state": Database["public"]['Enums']["webhook_delivery_state"],"updated_at": string,"webhook_id": string | null,"waiting_for": string | null
                  }
                  ComputedFields: "waiting_for"
                  Insert: {
                    "attempt_count"?: number,"company_id": string,"completed_at"?: string | null,"created_at"?: string,"event_id": string,"id"?: string,"last_attempt_at"?: string | null,"last_error"?: string | null,"last_status"?: number | null,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"next_attempt_at"?: string | null,"ordering_key"?: string | null,"ordering_seq"?: number | null,"redelivery_of"?: string | null,"state"?: Database["public"]['Enums']["webhook_delivery_state"],"updated_at"?: string,"webhook_id"?: string | null
                  }
                  Update: {
                    "attempt_count"?: number,"company_id"?: string,"completed_at"?: string | null,"created_at"?: string,"event_id"?: string,"id"?: string,"last_attempt_at"?: string | null,"last_error"?: string | null,"last_status"?: number | null,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"next_attempt_at"?: string | null,"ordering_key"?: string | null,"ordering_seq"?: number | null,"redelivery_of"?: string | null,"state"?: Database["public"]['Enums']["webhook_delivery_state"],"updated_at"?: string,"webhook_id"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "webhook_deliveries_event_id_fkey"
      columns: ["event_id"]
isOneToOne: false
      referencedRelation: "webhook_events"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "webhook_deliveries_redelivery_of_fkey"
      columns: ["redelivery_of"]
isOneToOne: false
      referencedRelation: "webhook_deliveries"
      referencedColumns: ["id"]
    }
                  ]
                },"webhook_delivery_attempts": {
                  Row: {
                    "attempt_number": number,"company_id": string,"created_at": string,"delivery_id": string,"duration_ms": number | null,"error": string | null,"id": number,"outcome": Database["public"]['Enums']["webhook_attempt_outcome"],"response_body": string | null,"status": number | null,"worker": string | null
                  }
                  ComputedFields: never
                  Insert: {
                    "attempt_number": number,"company_id": string,"created_at"?: string,"delivery_id": string,"duration_ms"?: number | null,"error"?: string | null,"id"?: never,"outcome": Database["public"]['Enums']["webhook_attempt_outcome"],"response_body"?: string | null,"status"?: number | null,"worker"?: string | null
                  }
                  Update: {
                    "attempt_number"?: number,"company_id"?: string,"created_at"?: string,"delivery_id"?: string,"duration_ms"?: number | null,"error"?: string | null,"id"?: never,"outcome"?: Database["public"]['Enums']["webhook_attempt_outcome"],"response_body"?: string | null,"status"?: number | null,"worker"?: string | null
                  }
                  Relationships: [
                    {
      foreignKeyName: "webhook_delivery_attempts_delivery_id_fkey"
      columns: ["delivery_id"]
isOneToOne: false
      referencedRelation: "webhook_deliveries"
      referencedColumns: ["id"]
    }
                  ]
                },"webhook_events": {
                  Row: {
                    "company_id": string,"created_at": string,"id": string,"ordering_key": string | null,"payload": NonNullable<Json>,"trigger_type": string
                  }
                  ComputedFields: never
                  Insert: {
                    "company_id": string,"created_at"?: string,"id"?: string,"ordering_key"?: string | null,"payload": NonNullable<Json>,"trigger_type": string
                  }
                  Update: {
                    "company_id"?: string,"created_at"?: string,"id"?: string,"ordering_key"?: string | null,"payload"?: NonNullable<Json>,"trigger_type"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "webhook_events_company_id_fkey"
      columns: ["company_id"]
isOneToOne: false
      referencedRelation: "companies"
      referencedColumns: ["id"]
    }
                  ]
                },"webhook_trigger_types": {
                  Row: {
                    "description": string,"example_payload": Json | null,"name": string
                  }
                  ComputedFields: never
                  Insert: {
                    "description": string,"example_payload"?: Json | null,"name": string
                  }
                  Update: {
                    "description"?: string,"example_payload"?: Json | null,"name"?: string
                  }
                  Relationships: [
                    
                  ]
                },"webhooks": {
                  Row: {
                    "company_id": string,"created_at": string,"delivery_order": string,"description": string | null,"disabled_at": string | null,"disabled_reason": string | null,"id": string,"is_active": boolean,"max_concurrent_requests": number | null,"max_requests_per_second": number | null,"trigger_type": string,"updated_at": string,"url": string,"webhook_endpoint_health": {
              "circuit_opened_at": string | null,
"company_id": string,
"concurrency": number | null,
"consecutive_failures": number,
"failing_since": string | null,
"held_back_by_own_limits": boolean | null,
"last_attempt_at": string | null,
"last_error": string | null,
"last_status": number | null,
"last_success_at": string | null,
"next_probe_at": string | null,
"state": string | null,
"waiting_for_company_share": boolean | null,
"webhook_id": string
            } | null
                  }
                  ComputedFields: "webhook_endpoint_health"
                  Insert: {
                    "company_id": string,"created_at"?: string,"delivery_order"?: string,"description"?: string | null,"disabled_at"?: string | null,"disabled_reason"?: string | null,"id"?: string,"is_active"?: boolean,"max_concurrent_requests"?: number | null,"max_requests_per_second"?: number | null,"trigger_type": string,"updated_at"?: string,"url": string
                  }
                  Update: {
                    "company_id"?: string,"created_at"?: string,"delivery_order"?: string,"description"?: string | null,"disabled_at"?: string | null,"disabled_reason"?: string | null,"id"?: string,"is_active"?: boolean,"max_concurrent_requests"?: number | null,"max_requests_per_second"?: number | null,"trigger_type"?: string,"updated_at"?: string,"url"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "webhooks_company_id_fkey"
      columns: ["company_id"]
isOneToOne: false
      referencedRelation: "companies"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "webhooks_trigger_type_fkey"
      columns: ["trigger_type"]
isOneToOne: false
      referencedRelation: "webhook_trigger_types"
      referencedColumns: ["name"]
    }
                  ]
                }
          }
          Views: {
            "webhook_endpoint_health": {
                  Row: {
                    "circuit_opened_at": string | null,"company_id": string,"concurrency": number | null,"consecutive_failures": number,"failing_since": string | null,"held_back_by_own_limits": boolean | null,"last_attempt_at": string | null,"last_error": string | null,"last_status": number | null,"last_success_at": string | null,"next_probe_at": string | null,"state": string | null,"waiting_for_company_share": boolean | null,"webhook_id": string
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                },"webhook_health": {
                  Row: {
                    "cancellations_in_progress": number | null,"checked_at": string | null,"companies_at_share": number | null,"deliveries_being_cancelled": number | null,"dispatcher_awake": boolean | null,"dispatcher_heartbeat_at": string | null,"dispatcher_listening": boolean | null,"due_deliveries": number | null,"endpoints_circuit_open": number | null,"endpoints_disabled": number | null,"endpoints_failing": number | null,"endpoints_healthy": number | null,"endpoints_waiting_for_company_share": number | null,"endpoints_with_due_work": number | null,"in_flight_deliveries": number | null,"lag_seconds": number | null,"last_wakeup_failure": string | null,"last_wakeup_failure_at": string | null,"last_wakeup_requested_at": string | null,"listener_heartbeat_at": string | null,"oldest_cancellation_age_seconds": number | null,"oldest_due_at": string | null,"oldest_due_webhook_id": string | null,"oldest_signal_age_seconds": number | null,"oldest_waiting_result_age_seconds": number | null,"pending_deliveries_estimate": number | null,"results_waiting_for_held_endpoints": number | null,"scheduled_deliveries_estimate": number | null,"signals": number | null,"wakeup_failures": number | null
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                }
          }
          Functions: {
            "cancel_webhook_delivery":
{ Args: { "delivery_id": string }; Returns: string
                           },
"count_replayable_webhook_deliveries":
{ Args: { "since": string,"webhook_id": string }; Returns: number
                           },
"get_webhook_secret":
{ Args: { "webhook_id": string }; Returns: string
                           },
"redeliver_webhook_delivery":
{ Args: { "delivery_id": string }; Returns: string
                           },
"replay_webhook_deliveries":
{ Args: { "since": string,"webhook_id": string }; Returns: number
                           },
"rotate_webhook_secret":
{ Args: { "webhook_id": string }; Returns: string
                           },
"send_test_webhook":
{ Args: { "webhook_id": string }; Returns: string
                           },
"waiting_for":
{ Args: { "delivery": Omit<Database["public"]['Tables']["webhook_deliveries"]['Row'], Database["public"]['Tables']["webhook_deliveries"]['ComputedFields']> }; Returns: string
                           },
"webhook_deliveries_per_hour":
{ Args: { "for_webhook_id"?: string,"since"?: string }; Returns: {
              "cancelled": number,"failed": number,"hour": string,"pending": number,"retrying": number,"succeeded": number,"webhook_id": string
            }[]
                           },
"webhook_endpoint_health":
{ Args: { "webhook": Omit<Database["public"]['Tables']["webhooks"]['Row'], Database["public"]['Tables']["webhooks"]['ComputedFields']> }; Returns: {
              "circuit_opened_at": string | null,
"company_id": string,
"concurrency": number | null,
"consecutive_failures": number,
"failing_since": string | null,
"held_back_by_own_limits": boolean | null,
"last_attempt_at": string | null,
"last_error": string | null,
"last_status": number | null,
"last_success_at": string | null,
"next_probe_at": string | null,
"state": string | null,
"waiting_for_company_share": boolean | null,
"webhook_id": string
            }
                          SetofOptions: {
        from: "webhooks"
        to: "webhook_endpoint_health"
        isOneToOne: true
        isSetofReturn: true
      } },
"webhook_endpoint_stats":
{ Args: { "since"?: string }; Returns: {
              "cancelled": number,"deliveries": number,"failed": number,"last_attempt_at": string,"last_status": number,"pending": number,"retrying": number,"succeeded": number,"success_rate": number,"webhook_id": string
            }[]
                           },
"webhooks_admin_company_id":
{ Args: Record<PropertyKey, never>; Returns: string
                           }
          }
          Enums: {
            "webhook_attempt_outcome": "succeeded"|"failed"|"blocked","webhook_delivery_state": "pending"|"succeeded"|"failed"|"cancelled"
          }
          CompositeTypes: {
            [_ in never]: never
          }
        }
}

type DatabaseWithoutInternals = Omit<Database, '__InternalSupabase'>

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
  ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R
    }
    ? R
    : never
  : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I
    }
    ? I
    : never
  : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U
    }
    ? U
    : never
  : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
  ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
  ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never

export const Constants = {
  "public": {
          Enums: {
            "webhook_attempt_outcome": ["succeeded", "failed", "blocked"],"webhook_delivery_state": ["pending", "succeeded", "failed", "cancelled"]
          }
        }
} as const
