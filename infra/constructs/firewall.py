"""An optional AWS WAF web ACL on the API stage (context ``waf: true``)."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

# Requests per 5 minutes from one IP before WAF blocks it (well above any bot's need).
RATE_LIMIT_PER_IP = 3000


def _visibility(name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(
    name: str, priority: int, count_only: tuple[str, ...] = ()
) -> waf.CfnWebACL.RuleProperty:
    return waf.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
        statement=waf.CfnWebACL.StatementProperty(
            managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    waf.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=waf.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count_only
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


class ApiFirewall(Construct):
    """Per-IP rate limiting plus AWS managed rule groups, associated with the stage."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: apigw.Stage) -> None:
        super().__init__(scope, construct_id)
        rate_rule = waf.CfnWebACL.RuleProperty(
            name="RatePerIp",
            priority=0,
            action=waf.CfnWebACL.RuleActionProperty(block={}),
            statement=waf.CfnWebACL.StatementProperty(
                rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(
                    limit=RATE_LIMIT_PER_IP, aggregate_key_type="IP"
                )
            ),
            visibility_config=_visibility("RatePerIp"),
        )
        self.web_acl = waf.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("tickerserve"),
            rules=[
                rate_rule,
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
                # The common rule set blocks bodies over 8 KB; a 1000-item batch is larger.
                _managed("AWSManagedRulesCommonRuleSet", 2, count_only=("SizeRestrictions_BODY",)),
            ],
        )
        waf.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
