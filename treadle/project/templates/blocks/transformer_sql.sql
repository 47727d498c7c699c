-- A SQL transformer, run on the DuckDB profile `default` (`profile:` on the block).
-- Jinja fills in, between double curly braces: df_1 … df_N, the upstream outputs as
-- tables; execution_date and the other context values; variables('name').
select
    lpep_pickup_datetime::date as pickup_date,
    count(*) as trips,
    sum(total_amount) as revenue
from {{ df_1 }}
where lpep_pickup_datetime::date <= '{{ execution_date.date() }}'
group by 1
order by 1
