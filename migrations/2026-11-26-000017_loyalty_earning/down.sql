DROP TABLE loyalty_cap_counters;
DROP TABLE loyalty_events;
DROP TABLE loyalty_tier_changes;
DROP TABLE loyalty_user_tiers;
DROP TABLE loyalty_tiers;
DROP TRIGGER loyalty_rule_versions_immutable ON loyalty_rule_versions;
DROP TABLE loyalty_rule_versions;
DROP FUNCTION loyalty_rule_versions_immutable();
DROP TABLE loyalty_rules;
