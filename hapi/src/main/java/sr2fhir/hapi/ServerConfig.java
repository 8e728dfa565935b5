package sr2fhir.hapi;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.binary.api.IBinaryStorageSvc;
import ca.uhn.fhir.jpa.binstore.MemoryBinaryStorageSvcImpl;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import jakarta.persistence.EntityManagerFactory;
import java.util.Properties;
import javax.sql.DataSource;
import org.apache.commons.dbcp2.BasicDataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

/**
 * Spring wiring of HAPI's JPA server: the beans HAPI leaves to the application (database, JPA,
 * storage). The FHIR version's own config (JpaR5Config or JpaR4Config) is registered beside it by
 * {@link Launcher}.
 */
@Configuration
@EnableTransactionManagement
@Import({HapiJpaConfig.class, JpaBatch2Config.class, Batch2JobsConfig.class, ThreadPoolFactoryConfig.class,
    // HAPI's in-memory message broker, which its batch jobs (reindexing, terminology) need.
    SubscriptionChannelConfig.class})
public class ServerConfig {

    /** H2 JDBC URL; set by {@link Launcher} before the context starts (in memory unless --db is given). */
    static String jdbcUrl = "jdbc:h2:mem:sr2fhir";

    @Bean
    public JpaStorageSettings storageSettings() {
        JpaStorageSettings s = new JpaStorageSettings();
        // A reference to a resource the server does not hold is an error, as on production servers.
        s.setEnforceReferentialIntegrityOnWrite(true);
        s.setAutoCreatePlaceholderReferenceTargets(false);
        s.setAllowExternalReferences(false);
        // No full-text index: the tests search by token, reference and _source only.
        s.setHibernateSearchIndexFullText(false);
        s.setAdvancedHSearchIndexing(false);
        // Searching by _source (meta.source) is how corrected reports find their predecessor.
        s.setStoreMetaSourceInformation(JpaStorageSettings.StoreMetaSourceInformationEnum.SOURCE_URI_AND_REQUEST_ID);
        return s;
    }

    @Bean
    public PartitionSettings partitionSettings() {
        return new PartitionSettings();
    }

    @Bean
    public DataSource dataSource() {
        BasicDataSource ds = new BasicDataSource();
        ds.setDriver(new org.h2.Driver());
        ds.setUrl(jdbcUrl);
        ds.setUsername("sa");
        ds.setPassword("");
        ds.setMaxTotal(8);
        return ds;
    }

    @Bean
    @Primary
    public LocalContainerEntityManagerFactoryBean entityManagerFactory(
            ConfigurableListableBeanFactory beanFactory, FhirContext fhirContext, JpaStorageSettings settings, DataSource dataSource) {
        LocalContainerEntityManagerFactoryBean emf = HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, settings);
        emf.setPersistenceUnitName("SR2FHIR_HAPI");
        emf.setDataSource(dataSource);
        Properties p = new Properties();
        p.put("hibernate.dialect", HapiFhirH2Dialect.class.getName());
        p.put("hibernate.hbm2ddl.auto", "update");
        p.put("hibernate.search.enabled", "false");
        p.put("hibernate.format_sql", "false");
        p.put("hibernate.show_sql", "false");
        emf.setJpaProperties(p);
        return emf;
    }

    @Bean
    @Primary
    public JpaTransactionManager transactionManager(EntityManagerFactory emf) {
        return new JpaTransactionManager(emf);
    }

    @Bean
    public IBinaryStorageSvc binaryStorageSvc() {
        return new MemoryBinaryStorageSvcImpl();
    }

    @Bean
    public DatabaseBackedPagingProvider databaseBackedPagingProvider() {
        DatabaseBackedPagingProvider p = new DatabaseBackedPagingProvider();
        p.setDefaultPageSize(100);
        p.setMaximumPageSize(1000);
        return p;
    }
}
