DROP TABLE oauth_interactions;
