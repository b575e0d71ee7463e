SELECT
    account_dimension.sid  AS "account_dimension.account_sid",
    account_dimension.friendly_name  AS "account_dimension.friendly_name",
    billable_items.sid  AS "billable_items.sid",
    billable_item_metadata_alex.product  AS "billable_item_metadata_alex.product",
    COALESCE(SUM(counters_by_billable_item.total ), 0) AS "counters_by_billable_item.total_sum",
    COALESCE(SUM(counters_by_billable_item.quantity ), 0) AS "counters_by_billable_item.quantity_sum"
FROM public.counters_by_billable_item_complete  AS counters_by_billable_item
LEFT JOIN rawpii_dim_account  AS account_dimension ON counters_by_billable_item.account_sid  = account_dimension.sid
LEFT JOIN public.billable_items  AS billable_items ON counters_by_billable_item.billable_item_sid  = billable_items.sid
LEFT JOIN darwin_transform.billable_item_metadata_alex  AS billable_item_metadata_alex ON counters_by_billable_item.billable_item_sid = billable_item_metadata_alex.sid
WHERE (counters_by_billable_item.account_sid ) = 'AC00000000000000000000000000000d01' AND (((( counters_by_billable_item.date  ) >= (TIMESTAMP '2026-10-01') AND ( counters_by_billable_item.date  ) < (TIMESTAMP '2026-11-01'))) AND (counters_by_billable_item.units ) = 'USD') AND ((counters_by_billable_item.subtype ) IN ('sale', 'tax') AND ((UPPER(( billable_items.friendly_name  )) LIKE UPPER('%Outbound SMS%') OR UPPER(( billable_items.friendly_name  )) LIKE UPPER('%Outbound Shortcode SMS%')) AND (UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Say%') AND UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Incoming%') AND UPPER(( billable_items.friendly_name  )) NOT LIKE UPPER('%Phone Number%') OR ( billable_items.friendly_name  ) IS NULL)) AND ((billable_item_metadata_alex.product ) LIKE '%Authy%' AND (counters_by_billable_item.data_load_date >=  COALESCE( TIMESTAMP '2026-10-01', date '2010-01-01') )))
GROUP BY
    1,
    2,
    3,
    4
ORDER BY
    5 DESC
LIMIT 500
