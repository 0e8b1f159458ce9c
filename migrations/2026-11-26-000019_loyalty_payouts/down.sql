DROP TABLE loyalty_payouts;
DROP TABLE loyalty_payout_quotes;
