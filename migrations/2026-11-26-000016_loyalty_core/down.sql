DROP TABLE loyalty_adjustment_requests;
DROP TABLE loyalty_entries;
DROP TABLE loyalty_lots;
DROP TABLE loyalty_transactions;
DROP TABLE loyalty_accounts;
DROP TABLE loyalty_partner_api_keys;
DROP TABLE loyalty_partners;
DROP FUNCTION loyalty_refuse_change();
